"""The `venvserve` command line, one module per command group:

    serve.py     serve (banner, runtime file)      ocr.py      ocr (through a found server, else in-process)
    envs.py      envs list|install|verify|remove|lock      plan.py     envs plan
    models.py    models list|pull                  ps.py       ps, load, unload, logs (a running server)
    doctor.py    doctor                            ray.py      ray deploy|plan (Ray Serve)
    jobs.py      jobs list|show|result|cancel|wait, and `ocr --job`

Output follows uv's manners (see console.py): data on stdout, progress and
errors on stderr, ``error:`` then ``hint:``, exit code 1 on error, 2 on a
bad setting.
"""

import logging
from typing import Annotated

import typer

from .. import console
from . import doctor, envs, jobs, models, ocr, ps, ray, serve

app = typer.Typer(help="Serve many AI models, each in its own Python environment, behind one HTTP API.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)


@app.callback()
def _root(ctx: typer.Context,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="also show info logs on stderr")] = False):
    """Serve many AI models, each in its own Python environment, behind one HTTP API."""
    if ctx.invoked_subcommand == "serve":
        return  # the server sets up its own logging (--log-level, --log-format)
    console.capture_logs(verbose)
    if not verbose:
        # The CLI reports env builds itself (with the uv log on failure).
        logging.getLogger("venvserve.envs").setLevel(logging.CRITICAL)


app.command()(serve.serve)
app.command()(ocr.ocr)
app.add_typer(envs.app, name="envs")
app.add_typer(models.app, name="models")
app.add_typer(jobs.app, name="jobs")
app.command()(ps.ps)
app.command()(ps.load)
app.command()(ps.unload)
app.command()(ps.logs)
app.command()(doctor.doctor)
app.add_typer(ray.app, name="ray")


def main() -> None:  # pragma: no cover
    app(prog_name="venvserve")


__all__ = ["app", "main"]
