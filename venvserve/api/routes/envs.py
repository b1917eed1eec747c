"""The environments: list, describe, build, remove."""

import asyncio

from fastapi import APIRouter, Depends

from ...errors import NotFound
from ...gateway import Gateway
from ...names import is_env_name
from .. import examples as ex
from ..deps import gateway

router = APIRouter(tags=["envs"])


def known(name: str) -> str:
    """A name that may be an env's; anything else (too long, a path) is a 404 that touches no file."""
    if not is_env_name(name):
        raise NotFound(f"no env named {name[:64]!r}", code="env_not_found", hint="GET /v1/envs lists the envs")
    return name


def env_names(gw: Gateway) -> list[str]:
    names = set(gw.envs.names())
    names.update(s.python_env for s in gw.catalog if s.python_env and gw.envs.external(s.python_env))
    return sorted(names)


@router.get("/v1/envs", summary="Every env: status and Python version", responses=ex.responses(ex.ENVS))
async def list_envs(gw: Gateway = Depends(gateway)):
    # Off the loop: a template's first fingerprint reads its files, and a template folder may be large.
    data = await asyncio.to_thread(lambda: [gw.envs.describe(name) for name in env_names(gw)])
    return {"object": "list", "data": data}


@router.get("/v1/envs/{name}", summary="One env: status, Python, size, packages, log tail",
            responses=ex.responses(ex.ENV, 404))
async def get_env(name: str, gw: Gateway = Depends(gateway)):
    gw.envs.template(known(name))
    return await asyncio.to_thread(gw.envs.describe, name, True)


@router.post("/v1/envs/{name}/install", summary="Build the env (no-op when ready)",
             responses=ex.responses(ex.ENV, 404, 500))
async def install_env(name: str, gw: Gateway = Depends(gateway)):
    await gw.envs.ensure(known(name))
    return await asyncio.to_thread(gw.envs.describe, name, True)


@router.delete("/v1/envs/{name}", summary="Remove the env's builds (refused while a worker uses it)",
               responses=ex.responses(ex.ENVS["data"][0], 404, 409))
async def remove_env(name: str, gw: Gateway = Depends(gateway)):
    await gw.envs.remove(known(name))
    return gw.envs.describe(name)
