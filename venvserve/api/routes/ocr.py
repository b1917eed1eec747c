"""POST /v1/ocr: an image or PDF in, text or markdown out."""

import shutil
import time

from fastapi import APIRouter, Depends, Request

from ...gateway import Gateway
from ...ocr.options import parse_options
from .. import examples as ex
from .. import requestlog
from ..deps import gateway
from ..jsonbody import check_depth
from ...uploads import UploadLimits, receive_upload

router = APIRouter(tags=["ocr"])

OCR_EXAMPLE = {
    "model": "rapidocr", "format": "text", "text": "Hello venvserve",
    "pages": [{"page": 1, "text": "Hello venvserve"}],
    "timing_ms": {"upload": 0.4, "decode": 0.3, "queue": 0.1, "inference": 110.2, "total": 111.1},
}


@router.post("/v1/ocr", summary="OCR an image or a PDF",
             description="multipart form: `file` (PNG, JPEG, WebP, TIFF, BMP or PDF), optional `model` "
                         "(default: the catalog's first), `format` (`text` or `markdown`) and `options` "
                         "(a JSON object for the backend). PDF pages are rasterised and OCR'd one by one. "
                         "`timing_ms` splits the time into `upload`, `decode`, `env_build` and `load` (when the "
                         "request had to wait for them), `queue`, `inference` and `total`.",
             responses=ex.responses(OCR_EXAMPLE, 400, 404, 413, 415, 429, 502, 503, 504, 507))
async def ocr(request: Request, gw: Gateway = Depends(gateway)):
    t0 = time.perf_counter()
    settings = gw.settings
    work_dir = gw.new_request_dir()
    try:
        upload = await receive_upload(request, work_dir, UploadLimits.from_settings(settings))
        upload_ms = (time.perf_counter() - t0) * 1000
        model_id = gw.resolve_model(upload.fields.get("model") or None)
        record = requestlog.current()
        if record is not None:
            record.model = model_id  # errors from here on count against the model
        raw_options = upload.fields.get("options")
        if raw_options:
            check_depth(raw_options.encode(), settings.max_json_depth, "`options`")
        result = await gw.ocr(upload.path, upload.size, model_id, upload.fields.get("format") or "text",
                              parse_options(raw_options), work_dir=work_dir,
                              disconnected=request.is_disconnected)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    split = record.timing_ms() if record is not None else {}
    timing = result["timing_ms"]
    # The pipeline's inference is wall time from the first page on; a cold start's env build and
    # model load happened inside it and are reported on their own.
    waited = split.get("env_build", 0.0) + split.get("load", 0.0)
    result["timing_ms"] = {"upload": round(upload_ms, 2), "decode": timing["decode"], **split,
                           "inference": round(max(0.0, timing["inference"] - waited), 2),
                           "total": round((time.perf_counter() - t0) * 1000, 2)}
    return result
