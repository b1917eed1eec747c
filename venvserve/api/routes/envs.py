"""The environments: list, describe, build, remove."""

import asyncio

from fastapi import APIRouter, Depends

from ...gateway import Gateway
from .. import examples as ex
from ..deps import gateway

router = APIRouter(tags=["envs"])


def env_names(gw: Gateway) -> list[str]:
    names = set(gw.envs.names())
    names.update(s.python_env for s in gw.catalog if s.python_env and gw.envs.external(s.python_env))
    return sorted(names)


@router.get("/v1/envs", summary="Every env: status and Python version", responses=ex.responses(ex.ENVS))
async def list_envs(gw: Gateway = Depends(gateway)):
    return {"object": "list", "data": [gw.envs.describe(name) for name in env_names(gw)]}


@router.get("/v1/envs/{name}", summary="One env: status, Python, size, packages, log tail",
            responses=ex.responses(ex.ENV, 404))
async def get_env(name: str, gw: Gateway = Depends(gateway)):
    gw.envs.template(name)
    return await asyncio.to_thread(gw.envs.describe, name, True)


@router.post("/v1/envs/{name}/install", summary="Build the env (no-op when ready)",
             responses=ex.responses(ex.ENV, 404, 500))
async def install_env(name: str, gw: Gateway = Depends(gateway)):
    await gw.envs.ensure(name)
    return await asyncio.to_thread(gw.envs.describe, name, True)


@router.delete("/v1/envs/{name}", summary="Remove the env's builds (refused while a worker uses it)",
               responses=ex.responses(ex.ENVS["data"][0], 404, 409))
async def remove_env(name: str, gw: Gateway = Depends(gateway)):
    await gw.envs.remove(name)
    return gw.envs.describe(name)
