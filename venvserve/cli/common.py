"""What every command shares: the options naming the catalog, templates and
data dir; turning the library's errors into ``error: ... / hint: ...``; and
did-you-mean for names a user typed."""

import contextlib
from pathlib import Path
from typing import Annotated, Iterable, Optional

import typer

from .. import console
from ..catalog import did_you_mean
from ..settings import Settings, SettingsError

CatalogOpt = Annotated[Optional[Path], typer.Option(
    help="models.json (env: VENVSERVE_CATALOG; default: the project's)", show_default=False)]
EnvsDirOpt = Annotated[Optional[Path], typer.Option(
    help="env templates (env: VENVSERVE_ENVS_DIR; default: envs/ beside the catalog)", show_default=False)]
DataDirOpt = Annotated[Optional[Path], typer.Option(
    help="built envs, caches, spool (env: VENVSERVE_DATA_DIR)", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
ServerOpt = Annotated[Optional[str], typer.Option(
    "--server", envvar="VENVSERVE_URL", show_default=False,
    help="the server's URL (default: the one whose runtime file is in the data dir, else 127.0.0.1:PORT)")]
ApiKeyOpt = Annotated[Optional[str], typer.Option(
    help="the server's API key (env: VENVSERVE_API_KEY)", show_default=False)]
AdminKeyOpt = Annotated[Optional[str], typer.Option(
    help="the server's admin key, for load, unload and logs (env: VENVSERVE_ADMIN_KEY)", show_default=False)]

CLI_HINTS = {
    "model_failed": "fix the cause shown above, then run the command again",
    "wrong_task": "pick an OCR model: `venvserve models list` shows each model's task",
}


def fail(message: str, hint: str | None = None, detail=(), detail_title: str = "") -> typer.Exit:
    console.error(message, hint, detail, detail_title)
    return typer.Exit(1)


@contextlib.contextmanager
def reported():
    """Turn the library's errors into ``error: ... / hint: ...`` and exit code 1."""
    from ..catalog import CatalogError
    from ..errors import VenvserveError

    try:
        yield
    except VenvserveError as exc:
        raise fail(exc.message, CLI_HINTS.get(exc.code) or exc.hint) from None
    except CatalogError as exc:
        raise fail(str(exc), "fix the file, or pass --catalog PATH") from None
    except OSError as exc:  # an unwritable data dir, a file that vanished...
        raise fail(str(exc), "`venvserve doctor` checks the data dir and the tools") from None
    except KeyboardInterrupt:
        console.err().print("Interrupted")
        raise typer.Exit(130) from None


def load_settings(**flags) -> Settings:
    """Settings from defaults, VENVSERVE_* and the flags given; a bad value exits 2 naming it."""
    try:
        return Settings.load(**flags)
    except SettingsError as exc:
        console.error(str(exc), "fix the flag or the variable named above")
        raise typer.Exit(2) from None


def settings_for(catalog, envs_dir, data_dir, **more) -> Settings:
    return load_settings(catalog=catalog, envs_dir=envs_dir, data_dir=data_dir, **more)


def env_manager(settings: Settings):
    from ..envs import EnvManager

    return EnvManager(settings.templates_dir, settings.data_dir, build_timeout_s=settings.build_timeout_s)


def unknown_model(model_id: str | None, known: list[str], where: str = ""):
    from ..catalog import unknown_model as not_found

    error = not_found(model_id, known, "`venvserve models list`")
    if where:
        error.message = f"{error.message} in {where}"
    return error


def unknown_env(name: str, known: list[str], where: str = "") -> typer.Exit:
    place = f" in {where}" if where else ""
    return fail(f"no env template {name!r}{place}",
                f"{did_you_mean(name, known)}`venvserve envs list` shows the envs: {', '.join(known)}")
