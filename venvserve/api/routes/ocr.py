"""POST /v1/ocr: an image or PDF in, text or markdown out."""

import shutil
import time

from fastapi import APIRouter, Depends, Request

from ...gateway import Gateway, parse_options
from .. import examples as ex
from ..deps import gateway
from ..uploads import receive_upload

router = APIRouter(tags=["ocr"])

OCR_EXAMPLE = {
    "model": "rapidocr", "format": "text", "text": "Hello venvserve",
    "pages": [{"page": 1, "text": "Hello venvserve"}],
    "timing_ms": {"upload": 0.4, "prepare": 0.3, "inference": 110.2, "total": 111.1},
}


@router.post("/v1/ocr", summary="OCR an image or a PDF",
             description="multipart form: `file` (PNG, JPEG, WebP, TIFF, BMP or PDF), optional `model` "
                         "(default: the catalog's first), `format` (`text` or `markdown`) and `options` "
                         "(a JSON object for the backend). PDF pages are rasterised and OCR'd one by one.",
             responses=ex.responses(OCR_EXAMPLE, 400, 404, 413, 415, 429, 502, 503, 504))
async def ocr(request: Request, gw: Gateway = Depends(gateway)):
    t0 = time.perf_counter()
    work_dir = gw.new_request_dir()
    try:
        upload = await receive_upload(request, work_dir, int(gw.settings.max_upload_mb * 2**20))
        upload_ms = (time.perf_counter() - t0) * 1000
        result = await gw.ocr(upload.path, upload.size, upload.fields.get("model") or None,
                              upload.fields.get("format") or "text",
                              parse_options(upload.fields.get("options")), work_dir=work_dir,
                              disconnected=request.is_disconnected)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    result["timing_ms"] = {"upload": round(upload_ms, 2), **result["timing_ms"],
                           "total": round((time.perf_counter() - t0) * 1000, 2)}
    return result
