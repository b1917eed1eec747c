"""Examples for the OpenAPI reference at /docs: one per route, and the error shape."""

MODEL = {
    "id": "rapidocr", "object": "model", "created": 1795981915, "owned_by": "venvserve",
    "task": "ocr", "architecture": "rapidocr", "python_env": "rapidocr", "env_status": "ready",
    "device": "cpu", "replicas": 1, "max_concurrency": 1, "pdf_dpi": 200, "default": True, "available": True,
    "reason": None, "description": "RapidOCR 3.x on onnxruntime, CPU", "state": "loaded",
    "activity": "ready", "workers": 1, "queued": 0, "spawns": 1, "failed_reason": None,
}
MODELS = {"object": "list", "data": [MODEL]}
INFER = {"hello": "world", "packages": {"pip": "24.0"}, "pid": 4344,
         "python": {"version": "3.11.7", "executable": "/usr/bin/python3"}}
LOAD = {"model": "rapidocr", "state": "loaded", "pids": [4344]}
UNLOAD = {"model": "rapidocr", "state": "unloaded", "stopped_workers": 1}
ENV = {
    "name": "rapidocr", "status": "ready", "fingerprint": "0477b34a9feb0dc6",
    "path": "/data/envs/rapidocr/0477b34a9feb0dc6", "error": None, "requires_python": ">=3.9",
    "python_version": "3.11.7", "size_bytes": 371195904,
    "packages": {"onnxruntime": "1.32.0", "opencv-python-headless": "5.0.0.93", "rapidocr": "3.10.0"},
    "builds": 1, "log_tail": ["Installed 18 packages in 61ms", "=== build 0477b34a9feb0dc6 ready in 0.08s"],
}
ENVS = {"object": "list", "data": [{k: ENV[k] for k in ("name", "status", "fingerprint", "path", "error",
                                                        "requires_python", "python_version")}]}
STATUS = {
    "version": "0.1.0", "draining": False,
    "workers": [{"id": 1, "model": "rapidocr", "pid": 4344, "env": "rapidocr", "state": "ready",
                 "started_at": 1795981920.6, "idle_s": 12.5, "in_flight": 0, "requests": 42, "rss_mb": 236.1,
                 "gpu_mb": None, "ready_ms": 1237.8, "load_ms": 1187.9}],
    "models": {"rapidocr": {"state": "loaded", "activity": "ready", "workers": 1, "queued": 0, "spawns": 1,
                            "failed_reason": None}},
    "budget": {"max_loaded_models": 0, "loaded_models": 1, "memory_budget_mb": 0, "memory_used_mb": 236.1,
               "gpu_memory_budget_mb": 0, "gpu_memory_used_mb": 0},
    "decoders": {"size": 2, "idle": 1, "busy": 0, "started": 1, "deaths": 0},
}
HEALTH = {"status": "ok", "version": "0.1.0"}

_ERRORS = {
    400: ("invalid_image", "the image cannot be decoded; it may be truncated or corrupt"),
    404: ("model_not_found", "unknown model 'nope'"),
    409: ("env_in_use", "env 'rapidocr' is in use by a running worker"),
    413: ("file_too_large", "the file is larger than this server's limit of 50 MB"),
    415: ("unsupported_media_type", "the uploaded file is neither an image nor a PDF"),
    429: ("queue_full", "model 'rapidocr' has 64 requests queued (limit 64)"),
    500: ("env_build_failed", "building env 'rapidocr' failed: `uv sync` exited 1"),
    502: ("worker_crashed", "the worker of 'rapidocr' (pid 4344) was killed by SIGKILL (perhaps out of memory?)"),
    503: ("model_failed", "model 'broken' failed: worker exited with status 3 before it was ready"),
    504: ("timeout", "the worker did not answer within 300s"),
    507: ("disk_full", "the server's disk is full; the upload could not be stored"),
}


def ok(example: dict) -> dict:
    return {"content": {"application/json": {"example": example}}}


def responses(example: dict, *statuses: int) -> dict:
    """``responses=`` for a route: its answer, and the errors it may give in the common shape."""
    out = {200: ok(example)}
    for status in statuses:
        code, message = _ERRORS[status]
        out[status] = {"description": code, "content": {"application/json": {
            "example": {"error": {"code": code, "message": message, "hint": "what to do about it"}}}}}
    return out
