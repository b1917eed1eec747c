"""MinerU2.5 (``opendatalab/MinerU2.5-2509-1.2B``) as a venvserve backend.

Runs the VLM the way MinerU's own ``vlm-transformers`` backend does, through
``mineru_vl_utils.MinerUClient``: a layout pass over the page, then one
content pass per block with MinerU's prompts for text, tables (HTML) and
formulas (LaTeX). The blocks come back in reading order; this backend joins
them into plain text or markdown.

``load()`` options, all optional:

- ``weights``: hub repo id (default ``opendatalab/MinerU2.5-2509-1.2B``) or a
  local folder; ``revision`` pins a hub revision.
- ``device`` (default cuda when torch sees a GPU; the weights load in their
  own dtype, bfloat16); ``batch_size`` (blocks per generate call, default
  mineru-vl-utils' choice); ``threads`` (torch's CPU threads).

Request ``options``: none.
"""

import inspect
import os
import re
import threading
import time
from html.parser import HTMLParser
from typing import Any, Dict, List

from . import _hub, _options
from ._ocr_common import check_ocr_request, package_versions

DEFAULT_WEIGHTS = "opendatalab/MinerU2.5-2509-1.2B"
PACKAGES = ("mineru-vl-utils", "torch", "transformers", "accelerate", "pillow")

# Page furniture MinerU itself leaves out of its markdown.
DISCARDED = {"header", "footer", "page_number", "page_footnote", "aside_text"}
HEADINGS = {"doc_title": "# ", "title": "## ", "paragraph_title": "## "}
PICTURES = {"image", "chart", "image_block"}


class _TableText(HTMLParser):
    """An HTML table as plain text: a row per line, cells separated by tabs."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: List[List[str]] = []
        self._cell: List[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._in_cell, self._cell = True, []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._in_cell:
            if not self.rows:
                self.rows.append([])
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self._cell.append(data)


def table_text(html: str) -> str:
    parser = _TableText()
    parser.feed(html)
    rows = ["\t".join(row) for row in parser.rows if any(row)]
    return "\n".join(rows) if rows else re.sub(r"<[^>]+>", " ", html).strip()


def blocks_to_text(blocks: List[Dict[str, Any]], markdown: bool) -> str:
    """MinerU's blocks (reading order) as plain text or markdown.

    Markdown follows MinerU's own: headings, tables as HTML, display formulas
    in $$, pictures and page furniture (headers, footers, page numbers) left
    out. Plain text keeps every recognised block, tables as tab-separated rows.
    """
    parts: List[str] = []
    last_text = -1
    for block in blocks:
        kind = str(block.get("type") or "text")
        content = block.get("content")
        if not content or kind in PICTURES:
            continue
        content = str(content).strip()
        if markdown and kind in DISCARDED:
            continue
        if block.get("merge_prev") and last_text >= 0:  # a paragraph continued from the block before
            sep = "" if re.search(r"[\u4e00-\u9fff]", content[:1]) else " "
            parts[last_text] += sep + content
            continue
        if kind == "table":
            content = content if markdown else table_text(content)
        elif kind in ("equation", "equation_block") and markdown and not content.startswith("$$"):
            content = "$$\n%s\n$$" % content
        elif kind in HEADINGS and markdown:
            content = HEADINGS[kind] + content.lstrip("# ")
        elif kind in ("code", "algorithm") and markdown and not content.startswith("```"):
            content = "```\n%s\n```" % content
        elif kind == "list_item" and markdown and not re.match(r"^([-*+]|\d+[.)])\s", content):
            content = "- " + content
        parts.append(content)
        last_text = len(parts) - 1 if kind == "text" else -1
    return ("\n\n" if markdown else "\n").join(parts)


class MinerUBackend(_hub.HubWeights):
    DEFAULT_WEIGHTS = DEFAULT_WEIGHTS

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()
        self._load_s = None

    def load(self, options: Dict[str, Any]) -> None:
        t0 = time.perf_counter()
        options = dict(options or {})
        batch_size = _options.positive_int(options, "batch_size")  # checked before the slow imports
        threads = _hub.cpu_threads(options)
        folder = _hub.resolve_weights(options, DEFAULT_WEIGHTS)  # missing weights fail before torch's import
        # mineru-vl-utils logs through loguru, whose default level (DEBUG) writes every raw layout
        # answer to the worker's log; read when loguru is imported.
        os.environ.setdefault("LOGURU_LEVEL", "INFO")
        import torch
        from mineru_vl_utils import MinerUClient

        _hub.apply_threads(torch, threads)
        device = _hub.torch_device(torch, options)
        try:  # mineru-vl-utils >= 2 (transformers 5): its loaders fix the tied lm_head
            from mineru_vl_utils.transformers_loading import load_transformers_model, load_transformers_processor

            model = load_transformers_model(folder, device_map=device)
            processor = load_transformers_processor(folder)
        except ImportError:  # mineru-vl-utils 0.x/1.x: the loading code of its README
            from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

            model = Qwen2VLForConditionalGeneration.from_pretrained(folder, dtype="auto", device_map=device)
            processor = AutoProcessor.from_pretrained(folder, use_fast=True)
        kwargs = {"backend": "transformers", "model": model, "processor": processor, "use_tqdm": False}
        if batch_size:
            kwargs["batch_size"] = batch_size
        accepted = inspect.signature(MinerUClient).parameters
        self._client = MinerUClient(**{k: v for k, v in kwargs.items() if k in accepted})
        self._load_s = time.perf_counter() - t0

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        images, fmt, _ = check_ocr_request(request)
        pages = _hub.page_images(images)
        out = []
        for n, image in enumerate(pages, 1):
            with self._lock:
                blocks = self._client.two_step_extract(image)
            out.append({"page": n, "text": blocks_to_text(list(blocks), fmt == "markdown")})
        return {"pages": out}

    def info(self) -> Dict[str, Any]:
        return package_versions(PACKAGES)
