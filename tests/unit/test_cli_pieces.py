"""The CLI's pure pieces: tables that fit a width without losing a word,
the runtime file through which the CLI finds a server, did-you-mean."""

import json
import os

from venvserve import console
from venvserve.cli import common, discovery

COLUMNS = ["id", "architecture", "env", "env status", "device", "available", "reason"]
ROWS = [
    ["rapidocr-v4", "rapidocr-onnxruntime", "rapidocr-v4", "not_installed", "cpu", "yes", ""],
    ["opendatalab/MinerU2.5-2509-1.2B", "mineru", "mineru", "-", "cuda", "no",
     "needs a CUDA GPU and none was found (NVML lists no device); run it on a machine with an NVIDIA GPU"],
]


def squeeze(text: str) -> str:
    return "".join(text.split())


def test_a_table_that_fits_is_one_line_per_row():
    lines = [line for line, _ in console.layout(COLUMNS, ROWS, None)]
    assert len(lines) == 3 and lines[0].split()[:3] == ["id", "architecture", "env"]


def test_a_narrow_table_wraps_and_keeps_every_cell():
    lines = [line for line, _ in console.layout(COLUMNS, ROWS, 80)]
    assert all(len(line) <= 80 for line in lines), lines
    text = squeeze("".join(lines))
    for row in ROWS:
        for cell in row:
            for word in cell.split():
                assert squeeze(word)[:6] in text, word
    reason = [line for line in lines if line.startswith("  reason: ")]
    assert reason, lines  # the long last column went under its row, labelled
    assert " ".join(stacked(lines, "reason")) == ROWS[1][-1]


def stacked(lines: list[str], label: str) -> list[str]:
    """The text of a column moved under its row: its labelled line and the indented ones after it."""
    prefix, found, inside = f"  {label}: ", [], False
    for line in lines:
        if line.startswith(prefix) or (inside and line.startswith(" " * len(prefix))):
            found.append(line[len(prefix):].strip())
            inside = True
        else:
            inside = False
    return found


def test_fair_widths_give_short_columns_their_natural_width():
    widths = console.fit_widths(["a", "b", "c"], [["x", "yy", "z" * 100]], 40)
    assert widths[:2] == [1, 2] and sum(widths) + 2 * 2 <= 40


def test_the_runtime_file_is_written_read_and_removed_only_by_its_writer(tmp_path):
    path = discovery.write_runtime_file(tmp_path, "http://127.0.0.1:8123")
    info = discovery.read_runtime_file(path)
    assert info["pid"] == os.getpid() and info["url"] == "http://127.0.0.1:8123"
    path.write_text(json.dumps({"pid": 1, "url": "http://127.0.0.1:9"}))  # another server took it over
    discovery.remove_runtime_file(tmp_path)
    assert path.exists()
    discovery.write_runtime_file(tmp_path, "http://127.0.0.1:8123")
    discovery.remove_runtime_file(tmp_path)
    assert not path.exists()
    path.write_text("{not json")
    assert discovery.read_runtime_file(path) is None


def test_did_you_mean():
    assert common.did_you_mean("tesserract", ["rapidocr", "tesseract"]) == "did you mean 'tesseract'? "
    assert common.did_you_mean("zzz", ["rapidocr", "tesseract"]) == ""
    error = common.unknown_model("rapidocr2", ["rapidocr", "echo"])
    assert error.code == "model_not_found" and "did you mean 'rapidocr'?" in error.hint
    assert "venvserve models list" in error.hint
