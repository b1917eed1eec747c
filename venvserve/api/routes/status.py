"""Liveness and the operator's view: workers, models, envs, budget."""

from fastapi import APIRouter, Depends

from ... import __version__
from ...gateway import Gateway
from .. import examples as ex
from ..deps import gateway

router = APIRouter(tags=["status"])


@router.get("/healthz", summary="Liveness", responses=ex.responses(ex.HEALTH))
async def healthz(gw: Gateway = Depends(gateway)):
    return {"status": "draining" if gw.supervisor.draining else "ok", "version": __version__}


@router.get("/v1/status", summary="Workers, models (activity, queue), budget, decoder processes",
            responses=ex.responses(ex.STATUS))
async def status(gw: Gateway = Depends(gateway)):
    return {
        "version": __version__,
        "draining": gw.supervisor.draining,
        "workers": gw.supervisor.worker_views(),
        "models": {spec.id: gw.supervisor.model_state(spec.id) for spec in gw.catalog},
        "budget": gw.supervisor.budget_view(),
        "decoders": gw.decoders.stats(),
    }
