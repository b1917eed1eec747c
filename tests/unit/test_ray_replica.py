"""The Ray replica, run in-process without Ray: a PDF page's render dpi reaches the backend as the request
key ``dpi`` (tesseract's ``--dpi``), as it does for a local worker."""

import asyncio
import io

from PIL import Image

from venvserve.ray.replica import ModelReplica


def test_the_render_dpi_reaches_the_backend():
    png = io.BytesIO()
    Image.new("L", (30, 20), 255).save(png, "PNG")
    replica = ModelReplica("echo", "echo")
    options = {"dims": True, "show_dpi": True}
    rendered = asyncio.run(replica.ocr([png.getvalue()], "text", options, 300.0))
    image = asyncio.run(replica.ocr([png.getvalue()], "text", options))
    assert rendered["ok"] and rendered["result"]["pages"][0]["text"] == "30x20 @300.0", rendered
    assert image["ok"] and image["result"]["pages"][0]["text"] == "30x20 @None", image
