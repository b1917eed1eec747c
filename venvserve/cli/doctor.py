"""`venvserve doctor`: can this machine build the envs and run the models?"""

import time

import typer

from .. import console
from .common import CatalogOpt, DataDirOpt, EnvsDirOpt, reported, settings_for


def doctor(catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None):
    """Check uv, an interpreter per env, tesseract, GPUs and disk; exit 1 if a required check fails."""
    from rich.text import Text

    from .. import doctor as checks

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        t0 = time.monotonic()
        results = checks.run(settings)
    styles = {checks.OK: "green", checks.WARN: "yellow", checks.FAIL: "bold red"}
    width = max(len(c.name) for c in results)
    out = console.out()
    for check in results:
        out.print(Text.assemble((f"{check.level:<4}", styles[check.level]), "  ",
                                f"{check.name:<{width}}  {check.detail}"), soft_wrap=True)
        if check.hint and check.level != checks.OK:
            out.print(Text.assemble(" " * (width + 8), ("hint", "bold cyan"), ": ", check.hint), soft_wrap=True)
    fails = sum(c.level == checks.FAIL for c in results)
    warns = sum(c.level == checks.WARN for c in results)
    console.progress(f"Ran {console.plural(len(results), 'check')} in {console.duration(time.monotonic() - t0)}: "
                     f"{console.plural(fails, 'failure')}, {console.plural(warns, 'warning')}")
    if fails:
        raise typer.Exit(1)
