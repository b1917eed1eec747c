"""HunyuanOCR (``tencent/HunyuanOCR``) as a venvserve backend.

transformers 5.13.0 is the first release with the model's architecture
(``hunyuan_vl``: ``HunYuanVLForConditionalGeneration`` and
``HunYuanVLProcessor``), so no remote code runs; before it the model card
asked for transformers at commit 82a06db0 from GitHub.

``load()`` options, all optional:

- ``weights``: hub repo id (default ``tencent/HunyuanOCR``) or a local folder;
  ``revision`` pins a hub revision and ``subfolder`` picks a model inside the
  repo (the repo's root became HunyuanOCR-1.5 in July 2026, with 1.0 kept
  under ``v1.0/``).
- ``device`` (default cuda when torch sees a GPU), ``dtype`` (default bfloat16
  on CUDA), ``attn_implementation`` (default "eager", as the model card uses),
  ``threads`` (torch's CPU threads).
- ``max_new_tokens`` (default 8192; the model card allows 16384).
- ``prompts``: ``{"text": ..., "markdown": ...}`` to replace the model's prompts.

Request ``options``: none.
"""

import threading
import time
from typing import Any, Dict

from . import _hub, _options
from ._ocr_common import check_ocr_request, package_versions

DEFAULT_WEIGHTS = "tencent/HunyuanOCR"
PACKAGES = ("torch", "transformers", "tokenizers", "accelerate", "pillow")

# The model card's prompts: "General Parsing" for plain text, and "Document
# Parsing" for markdown (body text as markdown, headers and footers left
# out, tables as HTML, formulas as LaTeX, in reading order).
PROMPTS = {
    "text": "提取图中的文字。",
    "markdown": ("提取文档图片中正文的所有信息用 markdown 格式表示，"
                 "其中页眉、页脚部分忽略，表格用 html 格式表达，"
                 "文档中公式用 latex 格式表示，按照阅读顺序组织进行解析。"),
}


class HunyuanOCRBackend(_hub.HubWeights):
    DEFAULT_WEIGHTS = DEFAULT_WEIGHTS

    def __init__(self) -> None:
        self._model: Any = None
        self._processor: Any = None
        self._torch: Any = None
        self._options: Dict[str, Any] = {}
        self._max_new = 8192
        self._lock = threading.Lock()
        self._load_s = None

    def load(self, options: Dict[str, Any]) -> None:
        t0 = time.perf_counter()
        options = dict(options or {})
        # Every option is checked before the slow imports: a typo fails the boot at once.
        _hub.prompt_for("text", PROMPTS, options)
        self._max_new = _hub.positive(options, "max_new_tokens", 8192)
        attn = _options.text(options, "attn_implementation", "eager")
        subfolder = _options.text(options, "subfolder")
        threads = _hub.cpu_threads(options)
        folder = _hub.resolve_weights(options, DEFAULT_WEIGHTS)  # missing weights fail before torch's import
        import torch
        import transformers

        _hub.apply_threads(torch, threads)

        model_class = getattr(transformers, "HunYuanVLForConditionalGeneration", None)
        if model_class is None:
            raise RuntimeError(
                "transformers %s has no HunYuanVLForConditionalGeneration: HunyuanOCR needs "
                "transformers >= 5.13.0 (the env template 'hunyuan' pins it)" % transformers.__version__)
        device = _hub.torch_device(torch, options)
        dtype = _hub.torch_dtype(torch, options, device)
        sub = {"subfolder": subfolder} if subfolder else {}
        self._processor = transformers.AutoProcessor.from_pretrained(folder, backend="pil", **sub)
        model = model_class.from_pretrained(
            folder, attn_implementation=attn,
            dtype=dtype, device_map=device, **sub)
        self._model = model.eval()
        self._torch = torch
        self._options = options
        self._load_s = time.perf_counter() - t0

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        images, fmt, _ = check_ocr_request(request)
        pages = _hub.page_images(images)
        prompt = _hub.prompt_for(fmt, PROMPTS, self._options)
        max_new = self._max_new
        messages = [
            {"role": "system", "content": ""},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]},
        ]
        chat = self._processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        out = []
        for n, image in enumerate(pages, 1):
            inputs = self._processor(text=[chat], images=[image], padding=True, return_tensors="pt")
            inputs = inputs.to(self._model.device)
            with self._lock, self._torch.no_grad():
                generated = self._model.generate(**inputs, max_new_tokens=max_new, do_sample=False)
            new_tokens = generated[0][inputs["input_ids"].shape[-1]:]
            text = self._processor.decode(new_tokens, skip_special_tokens=True,
                                          clean_up_tokenization_spaces=False)
            out.append({"page": n, "text": _hub.clean_repeats(text).strip()})
        return {"pages": out}

    def info(self) -> Dict[str, Any]:
        return package_versions(PACKAGES)
