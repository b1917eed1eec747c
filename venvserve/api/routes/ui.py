"""The web page: ``/`` and its static files under ``/ui/`` (plain HTML, CSS and JS modules)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parent.parent / "ui"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index():
    return FileResponse(UI_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def static_files() -> StaticFiles:
    return StaticFiles(directory=UI_DIR)
