"""The ingress deployment: the gateway's public API, served by Ray Serve.

Same routes, same JSON shapes and the same error shape
``{"error": {"code", "message"[, "hint"]}}`` as the single-machine gateway,
so clients do not change:

    POST /v1/ocr                    multipart `file`, `model`, `format`, `options`
    GET  /v1/models, /v1/models/{id}
    POST /v1/models/{id}/infer      JSON passthrough to the model's backend
    GET  /v1/status                 deployments, replica states, one replica's facts
    GET  /healthz

The upload is streamed into the ingress replica's private spool and goes
through the gateway's own OCR pipeline (``venvserve.ocr``): classified by its
bytes, checked and rendered page by page in the ingress's decoder processes
(``venvserve.decode``), and every page travels to the model deployment as
bytes, one call per page, as many at once as the model's replicas ×
max_concurrency.
"""

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from fastapi import Body, FastAPI, Request
from ray import serve

from .. import __version__, ocr
from ..uploads import receive_upload
from ..catalog import ModelSpec, unknown_model
from ..decode.limits import DecoderLimits, pool_size
from ..decode.pool import DecoderPool
from ..errors import BadRequest, GatewayTimeout, Unavailable, VenvserveError
from .errors import install, translate

STATUS_CACHE_S = 1.0

api = FastAPI(title="venvserve on Ray Serve", version=__version__)
install(api)


def decoder_pool(settings: dict, spool: Path) -> DecoderPool:
    limits = DecoderLimits(**{name: settings[key] for name, key in (
        ("memory_mb", "decoder_memory_mb"), ("cpu_s", "decoder_cpu_s"), ("timeout_s", "decoder_timeout_s"),
        ("max_page_pixels", "max_page_pixels")) if key in settings})
    return DecoderPool(pool_size(settings.get("decoders", 0), len(os.sched_getaffinity(0))), limits, cwd=spool)


@serve.ingress(api)
class Ingress:
    def __init__(self, config: dict, handles: dict):
        self.app_name = config["app_name"]
        self.models = {m["id"]: ModelSpec.model_validate(m) for m in config["models"]}
        self.default = config.get("default")
        self.deployed = dict(config["deployed"])  # model id -> deployment name
        self.skipped = dict(config.get("skipped") or {})  # model id -> why it is not deployed
        self.settings = dict(config["settings"])
        self.handles = handles
        self.started = time.time()
        self.spool = Path(tempfile.mkdtemp(prefix="venvserve-ingress-"))
        self._status = (0.0, {})
        self.decoders = decoder_pool(self.settings, self.spool)

    def __del__(self):
        shutil.rmtree(getattr(self, "spool", "/nonexistent"), ignore_errors=True)

    # -- models ----------------------------------------------------------------

    def resolve(self, model_id: str | None) -> ModelSpec:
        model_id = model_id or self.default
        if not model_id:
            raise BadRequest("no model given and the catalog has no default", code="model_required")
        spec = self.models.get(model_id)
        if spec is None:
            raise unknown_model(model_id, self.models)
        if model_id not in self.deployed:
            raise Unavailable(f"model {model_id!r} is not deployed on this cluster: {self.skipped.get(model_id)}",
                              code="model_unavailable",
                              hint="redeploy with `python -m venvserve.ray deploy --models ...`")
        return spec

    async def deployment_states(self) -> dict:
        """Deployment name → its Serve status (cached for a second; the controller is remote)."""
        at, states = self._status
        if time.monotonic() - at < STATUS_CACHE_S:
            return states

        def query():
            app = serve.status().applications.get(self.app_name)
            return dict(app.deployments) if app else {}

        try:
            states = await asyncio.wait_for(asyncio.to_thread(query), 10)
        except Exception:  # status is informative only; never fail a listing for it
            states = {}
        self._status = (time.monotonic(), states)
        return states

    async def entry(self, spec: ModelSpec) -> dict:
        name = self.deployed.get(spec.id)
        status = (await self.deployment_states()).get(name) if name else None
        replicas = {}
        if status is not None:
            replicas = {str(getattr(k, "value", k)): v for k, v in status.replica_states.items()}
            serve_status = str(getattr(status.status, "value", status.status))
            state = {"HEALTHY": "loaded", "UPSCALING": "loaded", "DOWNSCALING": "loaded",
                     "UPDATING": "loading"}.get(serve_status, "failed")
            failed_reason = status.message or None if state == "failed" else None
        else:
            serve_status, state = None, ("unknown" if name else "unavailable")
            failed_reason = None
        available = name is not None and state != "failed"
        reason = self.skipped.get(spec.id) if name is None else failed_reason
        return {
            "id": spec.id, "object": "model", "created": int(self.started), "owned_by": "venvserve",
            "task": spec.task, "architecture": spec.architecture, "python_env": spec.python_env,
            "env_status": "ready" if state == "loaded" else None, "device": spec.device,
            "replicas": spec.replicas, "max_concurrency": spec.max_concurrency,
            "pdf_dpi": spec.render_dpi(self.settings["pdf_dpi"]) if spec.task == "ocr" else None,
            "default": spec.id == self.default, "available": available, "reason": reason,
            "description": spec.description, "state": state, "activity": None,
            "workers": replicas.get("RUNNING", 0), "queued": None, "spawns": None,
            "failed_reason": failed_reason,
            "ray": {"deployment": name, "status": serve_status, "replica_states": replicas},
        }

    async def call(self, spec: ModelSpec, method: str, *args) -> dict:
        handle = getattr(self.handles[spec.id], method)
        response = handle.remote(*args)
        try:
            answer = await asyncio.wait_for(response, self.settings["request_timeout_s"])
        except asyncio.TimeoutError:
            response.cancel()
            raise GatewayTimeout(f"model {spec.id!r} did not answer within {self.settings['request_timeout_s']:.0f}s",
                                 hint="raise VENVSERVE_REQUEST_TIMEOUT_S at deploy time") from None
        except VenvserveError:
            raise
        except Exception as exc:
            raise translate(exc, spec.id) from None
        if not answer.get("ok"):
            raise VenvserveError(answer["message"], code=answer["code"], status=answer["status"])
        return answer["result"]

    # -- routes ------------------------------------------------------------------

    @api.get("/healthz", summary="Liveness")
    async def healthz(self):
        return {"status": "ok", "version": __version__, "backend": "ray"}

    @api.get("/v1/models", summary="List models (OpenAI list shape, with venvserve's fields)")
    async def list_models(self):
        return {"object": "list", "data": [await self.entry(spec) for spec in self.models.values()]}

    @api.get("/v1/status", summary="Deployments and, for each deployed model, one replica's facts")
    async def status(self):
        models = {}
        for spec in self.models.values():
            entry = await self.entry(spec)
            view = {"state": entry["state"], "available": entry["available"], "reason": entry["reason"],
                    **entry["ray"]}
            if spec.id in self.deployed and entry["state"] == "loaded":
                try:
                    view["replica"] = await asyncio.wait_for(self.handles[spec.id].info.remote(), 10)
                except Exception as exc:
                    view["replica"] = {"error": f"{type(exc).__name__}: {exc}"}
            models[spec.id] = view
        return {"version": __version__, "backend": "ray", "app": self.app_name, "models": models}

    @api.post("/v1/models/{model_id:path}/infer", summary="Send a JSON object to the model's backend")
    async def infer(self, model_id: str, body: dict = Body(..., examples=[{"hello": "world"}])):
        spec = self.resolve(model_id)
        ocr.check_reserved(body)
        return await self.call(spec, "infer", body)

    @api.get("/v1/models/{model_id:path}", summary="One model")
    async def get_model(self, model_id: str):
        spec = self.models.get(model_id)
        if spec is None:
            raise unknown_model(model_id, self.models)
        return await self.entry(spec)

    @api.post("/v1/ocr", summary="OCR an image or a PDF")
    async def ocr(self, request: Request):
        t0 = time.perf_counter()
        work_dir = self.spool / uuid.uuid4().hex
        work_dir.mkdir(mode=0o700)
        try:
            upload = await receive_upload(request, work_dir, int(self.settings["max_upload_mb"] * 2**20))
            upload_ms = (time.perf_counter() - t0) * 1000
            result = await self._ocr(upload.path, upload.size, upload.fields.get("model") or None,
                                     upload.fields.get("format") or "text",
                                     ocr.parse_options(upload.fields.get("options")), work_dir,
                                     request.is_disconnected)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        result["timing_ms"] = {"upload": round(upload_ms, 2), **result["timing_ms"],
                               "total": round((time.perf_counter() - t0) * 1000, 2)}
        return result

    async def _ocr(self, path: Path, size: int, model_id: str | None, fmt: str, options: dict,
                   work_dir: Path, disconnected) -> dict:
        ocr.check_format(fmt)
        spec = self.resolve(model_id)
        if spec.task != "ocr":
            raise BadRequest(f"model {spec.id!r} is not an OCR model (task {spec.task!r})",
                             code="wrong_task", hint=f"use POST /v1/models/{spec.id}/infer")

        async def call(page: dict) -> dict:  # a replica may be on another node: the page travels as bytes
            data = await asyncio.to_thread(Path(page["images"][0]).read_bytes)
            return await self.call(spec, "ocr", [data], page["format"], page["options"], page.get("dpi"))

        return await ocr.run(self.decoders, call, path, size, work_dir, model_id=spec.id, fmt=fmt,
                             options=options, dpi=spec.render_dpi(self.settings["pdf_dpi"]),
                             max_pages=self.settings["max_pdf_pages"],
                             concurrency=spec.replicas * spec.max_concurrency, disconnected=disconnected)
