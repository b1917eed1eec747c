"""The FastAPI application factory."""

from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ..gateway import Gateway
from ..settings import Settings
from . import errors
from .routes import envs, models, ocr, status


def create_app(settings: Settings | None = None, gw: Gateway | None = None) -> FastAPI:
    gw = gw or Gateway(settings or Settings.load())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    app = FastAPI(title="venvserve", version=__version__, lifespan=lifespan,
                  description="Many models, each in its own Python environment, behind one HTTP API.")
    app.state.gateway = gw
    errors.install(app)
    for module in (ocr, models, envs, status):
        app.include_router(module.router)
    return app
