"""CLI output the uv way: data on stdout, everything else on stderr.

- stdout carries only data (OCR text, tables, JSON), so it can be piped;
- stderr gets short progress lines with counts and times ("Built env
  tesseract in 1.21s"), a spinner while something slow runs (on a terminal
  only), and errors as ``error: ...``, the cause's output indented, a blank
  line, then ``hint: ...``;
- nothing depends on colour, and ``NO_COLOR`` (any non-empty value) turns off
  every style, bold included, not only colours.
"""

import contextlib
import logging
import os
import sys
import textwrap
from typing import Iterable, Iterator

from rich.console import Console
from rich.text import Text

_consoles: dict[str, Console] = {}


def _make(stream) -> Console:
    no_color = os.environ.get("NO_COLOR", "") != ""
    kwargs = {"color_system": None} if no_color else {}
    console = Console(file=stream, highlight=False, soft_wrap=False, **kwargs)
    if not console.is_terminal:
        # Piped output is read by programs: never wrap or cut a line.
        console = Console(file=stream, highlight=False, width=100_000, **kwargs)
    return console


def out() -> Console:
    """The console for data (stdout)."""
    if "out" not in _consoles:
        _consoles["out"] = _make(sys.stdout)
    return _consoles["out"]


def err() -> Console:
    """The console for progress, warnings and errors (stderr)."""
    if "err" not in _consoles:
        _consoles["err"] = _make(sys.stderr)
    return _consoles["err"]


# -- formatting -------------------------------------------------------------

def duration(seconds: float) -> str:
    """``170ms``, ``1.21s``, ``2m 05s``: uv's way of saying how long."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m {rest:02d}s"


def size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "-"
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


# -- stderr -------------------------------------------------------------------

def progress(message: str) -> None:
    """One finished step: ``Built env tesseract in 1.21s``."""
    err().print(Text(message), soft_wrap=True)


def warning(message: str) -> None:
    err().print(Text.assemble(("warning", "bold yellow"), ": ", message), soft_wrap=True)


def error(message: str, hint: str | None = None, detail: Iterable[str] = (), detail_title: str = "") -> None:
    """``error: message``, the cause's own output indented, a blank line, ``hint: ...``."""
    console = err()
    console.print(Text.assemble(("error", "bold red"), ": ", message), soft_wrap=True)
    lines = [line for line in detail if line.strip()]
    if lines:
        if detail_title:
            console.print(Text(f"  [{detail_title}]", style="bold"), soft_wrap=True)
        for line in lines:
            console.print(Text("  " + line, style="dim"), soft_wrap=True)
    if hint:
        console.print()
        console.print(Text.assemble(("hint", "bold cyan"), ": ", hint), soft_wrap=True)


class _Spinner:
    def __init__(self, status):
        self._status = status

    def update(self, message: str) -> None:
        if self._status is not None:
            self._status.update(Text(message))


@contextlib.contextmanager
def spinner(message: str) -> Iterator[_Spinner]:
    """A transient spinner on stderr while something slow runs; nothing when piped."""
    console = err()
    if not console.is_terminal:
        yield _Spinner(None)
        return
    with console.status(Text(message), spinner="dots") as status:
        yield _Spinner(status)


# -- stdout -------------------------------------------------------------------

def table(columns: list[str], rows: list[list[str]], caption: str | None = None) -> None:
    """A borderless table of data on stdout, fitted to the terminal (or to COLUMNS when piped).

    Cells that do not fit wrap onto more lines (at spaces and hyphens where
    they can); when even that leaves the last column (a reason, a path) too
    narrow, it goes under its row, labelled, across the whole width. Nothing
    is cut or dropped. Piped output without COLUMNS is never wrapped.
    """
    console = out()
    for line, style in layout(columns, rows, _table_width(console)):
        console.print(Text(line, style=style), soft_wrap=True)
    if caption:
        console.print(Text(caption, style="dim"), soft_wrap=True)


GAP = 2  # spaces between columns
FLOOR = 13  # a column narrower than its longest word gives way no further than this
STACK_BELOW = 40  # the last column goes under its row when it would be narrower than this


def _table_width(console: Console) -> int | None:
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return console.width if console.is_terminal else None


def layout(columns: list[str], rows: list[list[str]], width: int | None) -> list[tuple[str, str]]:
    """The table's lines with their styles (the header bold)."""
    widths = fit_widths(columns, rows, width)
    if width is None or len(columns) < 2 or widths[-1] >= min(STACK_BELOW, _natural(columns, rows)[-1]):
        return ([(line, "bold") for line in render_rows([columns], widths)]
                + [(line, "") for line in render_rows(rows, widths)])
    # The last column under each row, labelled, indented, across the whole width.
    head, last = columns[:-1], columns[-1]
    widths = fit_widths(head, [r[:-1] for r in rows], width)
    label = f"  {last}: "
    lines = [(line, "bold") for line in render_rows([head], widths)]
    for row in rows:
        lines += [(line, "") for line in render_rows([row[:-1]], widths)]
        if row[-1]:
            wrapped = textwrap.wrap(row[-1], max(8, width - len(label)), break_long_words=True) or [""]
            lines += [((label if i == 0 else " " * len(label)) + text, "") for i, text in enumerate(wrapped)]
    return lines


def _natural(columns: list[str], rows: list[list[str]]) -> list[int]:
    return [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]


def fit_widths(columns: list[str], rows: list[list[str]], width: int | None) -> list[int]:
    """Column widths within ``width``: each column gets its natural width or a fair share of what the
    narrower ones leave (max-min fairness), never less than its floor."""
    natural = _natural(columns, rows)
    if width is None:
        return natural
    floors = [max([len(w) for w in c.split()] + [min(FLOOR, max((len(w) for r in rows for w in r[i].split()),
                                                               default=1))])
              for i, c in enumerate(columns)]
    room = width - GAP * (len(columns) - 1)
    widths = [0] * len(columns)
    order = sorted(range(len(columns)), key=lambda i: natural[i])
    for n, i in enumerate(order):
        share = (room - sum(widths)) // (len(columns) - n)
        widths[i] = max(floors[i], min(natural[i], share))
    return widths


def render_rows(rows: list[list[str]], widths: list[int]) -> list[str]:
    lines = []
    for row in rows:
        cells = [textwrap.wrap(cell, w, break_long_words=True) or [""] for cell, w in zip(row, widths)]
        for n in range(max(len(c) for c in cells)):
            parts = [(c[n] if n < len(c) else "").ljust(w) for c, w in zip(cells, widths)]
            lines.append((" " * GAP).join(parts).rstrip())
    return lines


def write(text: str) -> None:
    """Data on stdout as is: no markup, no wrapping."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


# -- logging ------------------------------------------------------------------

class _LogHandler(logging.Handler):
    """The library's log records as short stderr lines (``warning: ...``)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover
            message = str(record.msg)
        if record.levelno >= logging.WARNING:
            warning(message)
        else:
            err().print(Text(message, style="dim"), soft_wrap=True)


def capture_logs(verbose: bool = False) -> None:
    """Route ``venvserve`` logs to stderr: warnings always, the rest with ``--verbose``."""
    root = logging.getLogger("venvserve")
    root.handlers[:] = [_LogHandler()]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False
