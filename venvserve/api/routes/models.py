"""The models: list (OpenAI shape), one, infer (JSON passthrough), load, unload."""

from fastapi import APIRouter, Body, Depends, Request

from ...gateway import Gateway
from ...ocr.options import check_reserved
from .. import examples as ex
from ..deps import gateway

router = APIRouter(tags=["models"])


@router.get("/v1/models", summary="List models (OpenAI list shape, with venvserve's fields)",
            responses=ex.responses(ex.MODELS))
async def list_models(gw: Gateway = Depends(gateway)):
    return {"object": "list", "data": [gw.model_entry(spec.id) for spec in gw.catalog]}


@router.post("/v1/models/{model_id:path}/infer", summary="Send a JSON object to the model's backend",
             description="The body is handed to the backend as it is, e.g. for `echo`: "
                         "`{\"hello\": 1, \"packages\": [\"numpy\"]}`, and the backend's answer comes "
                         "back as it wrote it. The body is limited in size (`--max-json-mb`) and nesting "
                         "(`--max-json-depth`).",
             responses=ex.responses(ex.INFER, 400, 404, 413, 429, 502, 503, 504))
async def infer(model_id: str, request: Request,
                body: dict = Body(..., examples=[{"hello": "world", "packages": ["pip"]}]),
                gw: Gateway = Depends(gateway)):
    return await run_infer(gw, model_id, body, request.is_disconnected)


async def run_infer(gw: Gateway, model_id: str, body: dict, disconnected) -> dict:
    """What the route does when the relay (api/fastpath.py) does not serve it (an app under a root path)."""
    model_id = gw.resolve_model(model_id)
    check_reserved(body)
    return await gw.supervisor.infer(model_id, body, disconnected=disconnected)


@router.post("/v1/models/{model_id:path}/load", summary="Start the model's workers and wait until ready",
             responses=ex.responses(ex.LOAD, 404, 500, 503, 504))
async def load(model_id: str, gw: Gateway = Depends(gateway)):
    model_id = gw.resolve_model(model_id)
    workers = await gw.supervisor.load(model_id)
    return {"model": model_id, "state": "loaded", "pids": [w.pid for w in workers]}


@router.post("/v1/models/{model_id:path}/unload", summary="Stop the model's workers (after in-flight work)",
             responses=ex.responses(ex.UNLOAD, 404))
async def unload(model_id: str, gw: Gateway = Depends(gateway)):
    model_id = gw.resolve_model(model_id)
    stopped = await gw.supervisor.unload(model_id)
    return {"model": model_id, "state": "unloaded", "stopped_workers": stopped}


@router.get("/v1/models/{model_id:path}", summary="One model", responses=ex.responses(ex.MODEL, 404))
async def get_model(model_id: str, gw: Gateway = Depends(gateway)):
    return gw.model_entry(model_id)
