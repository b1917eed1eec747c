"""DeepSeek-OCR (``deepseek-ai/DeepSeek-OCR``) as a venvserve backend.

The model is code from its hub repo (``trust_remote_code``): ``AutoModel``
loads ``modeling_deepseekocr.py``, whose ``infer()`` builds the prompt with the
image tokens, generates, and returns the text (``eval_mode=True``). Its
``modeling_deepseekv2.py`` imports ``LlamaFlashAttention2`` from transformers,
which transformers removed in 4.48, hence the env ``deepseek-ocr`` pins
transformers 4.47.1 (with torch 2.6.0).

``load()`` options, all optional:

- ``weights``: hub repo id (default ``deepseek-ai/DeepSeek-OCR``) or a local
  folder; ``revision``: hub revision to pin.
- ``device`` (default cuda when torch sees a GPU) and ``dtype`` (default
  bfloat16 on CUDA). The remote code's ``infer()`` calls ``.cuda()`` itself,
  so DeepSeek-OCR runs on CUDA only; ``threads``: torch's CPU threads.
- ``attn_implementation``: "eager" (default: DeepSeek's own attention, no
  compiled extension) or "flash_attention_2" (needs the env's optional
  ``flash-attn`` extra, built with nvcc).
- ``base_size`` / ``image_size`` / ``crop_mode``: the model's resolution mode
  (default 1024 / 640 / true, "Gundam"; Tiny 512/512/false, Small 640/640/false,
  Base 1024/1024/false, Large 1280/1280/false).
- ``patch_remote_code``: rewrite the cached remote code's imports that newer
  transformers no longer have (``LlamaFlashAttention2`` and two helpers), so the
  model can load in a shared env with transformers >= 4.48. Fragile by nature:
  see docs/gpu-models.md.
- ``prompts``: ``{"text": ..., "markdown": ...}`` to replace the model's prompts.

Request ``options``: none.
"""

import os
import re
import shutil
import tempfile
import threading
import time
from typing import Any, Dict, List, Tuple

from . import _hub, _options
from ._ocr_common import check_ocr_request, package_versions
from .base import LoadError

DEFAULT_WEIGHTS = "deepseek-ai/DeepSeek-OCR"
PACKAGES = ("torch", "transformers", "tokenizers", "flash-attn", "einops", "pillow")

# The prompts of the model card: free OCR for plain text, the grounding prompt
# for markdown (its answer carries <|ref|>..<|det|> layout tags, removed below).
PROMPTS = {
    "text": "<image>\nFree OCR. ",
    "markdown": "<image>\n<|grounding|>Convert the document to markdown. ",
}

# <|ref|>label<|/ref|><|det|>[[x0, y0, x1, y1]]<|/det|> before each block of the grounding output.
_REF_DET = re.compile(r"<\|ref\|>(.*?)<\|/ref\|><\|det\|>(.*?)<\|/det\|>\n?", re.DOTALL)
_END = "<｜end▁of▁sentence｜>"


def clean_output(text: str) -> str:
    """The model's answer without its layout tags: what the model card's
    ``save_results`` writes to result.mmd, minus the cropped-image links
    (the figures are not returned through this API)."""
    if text.endswith(_END):
        text = text[:-len(_END)]
    text = _REF_DET.sub("", text)
    text = text.replace("\\coloneqq", ":=").replace("\\eqqcolon", "=:")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# -- patching the cached remote code for newer transformers --------------------

_LLAMA_IMPORT = re.compile(
    r"from transformers\.models\.llama\.modeling_llama import \(\s*LlamaAttention,\s*LlamaFlashAttention2,?\s*\)")
_LLAMA_PATCHED = (
    "try:  # patched by venvserve: transformers >= 4.48 has no LlamaFlashAttention2\n"
    "    from transformers.models.llama.modeling_llama import LlamaAttention, LlamaFlashAttention2\n"
    "except ImportError:\n"
    "    from transformers.models.llama.modeling_llama import LlamaAttention\n"
    "    LlamaFlashAttention2 = LlamaAttention\n")
_FX_IMPORT = re.compile(r"^from transformers\.utils\.import_utils import is_torch_fx_available[ \t]*\n", re.M)
_FX_PATCHED = (
    "try:  # patched by venvserve: removed in transformers 5\n"
    "    from transformers.utils.import_utils import is_torch_fx_available\n"
    "except ImportError:\n"
    "    def is_torch_fx_available():\n"
    "        return False\n")
_PT_IMPORT = re.compile(
    r"from transformers\.pytorch_utils import \(\s*ALL_LAYERNORM_LAYERS,\s*is_torch_greater_or_equal_than_1_13,?\s*\)")
_PT_PATCHED = (
    "from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS\n"
    "is_torch_greater_or_equal_than_1_13 = True  # patched by venvserve: torch >= 2 everywhere\n")


def patch_source(source: str) -> Tuple[str, List[str]]:
    """Rewrite the imports newer transformers lack; answer (source, what changed)."""
    changed = []
    source, n = _LLAMA_IMPORT.subn(_LLAMA_PATCHED, source)
    if n:
        changed.append("LlamaFlashAttention2")
    source, n = _FX_IMPORT.subn(_FX_PATCHED, source)
    if n:
        changed.append("is_torch_fx_available")
    source, n = _PT_IMPORT.subn(_PT_PATCHED, source)
    if n:
        changed.append("is_torch_greater_or_equal_than_1_13")
    return source, changed


def patch_remote_code(folder: str) -> Dict[str, List[str]]:
    """Patch the model's ``*.py`` in ``folder`` (a hub snapshot or a local copy).

    A hub snapshot's files are symlinks into the shared blob store: the link is
    replaced by a patched copy, so the blob (and its hash) stays intact.
    Idempotent: patched files no longer match.
    """
    patched = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8") as f:
            source = f.read()
        new, changed = patch_source(source)
        if not changed:
            continue
        tmp = path + ".venvserve-tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(new)
        os.replace(tmp, path)  # replaces a symlink itself, not its target
        patched[name] = changed
    return patched


def check_remote_code_imports() -> None:
    """What modeling_deepseekv2.py imports from transformers, imported here first:
    in an env with another transformers the load fails with this message instead
    of deep inside the remote code."""
    import transformers

    try:
        from transformers.models.llama.modeling_llama import LlamaFlashAttention2  # noqa: F401
    except ImportError:
        raise LoadError(
            "transformers %s has no LlamaFlashAttention2, which DeepSeek-OCR's remote code imports "
            "(transformers removed it in 4.48); run the model in the env 'deepseek-ocr' "
            "(transformers 4.47.1) or set the model option patch_remote_code: true"
            % transformers.__version__) from None


class DeepSeekOCRBackend(_hub.HubWeights):
    DEFAULT_WEIGHTS = DEFAULT_WEIGHTS
    CPU_NOTE = ("cannot read pages on the CPU: DeepSeek-OCR's remote code moves every page to CUDA; "
                "a load there checks its weights and env, then stops; its device cuda runs it on a GPU")

    def __init__(self) -> None:
        self._model: Any = None
        self._tokenizer: Any = None
        self._options: Dict[str, Any] = {}
        self._sizes: Tuple[int, int, bool] = (1024, 640, True)  # base_size, image_size, crop_mode
        self._lock = threading.Lock()  # infer() keeps state on the model: one page at a time
        self._patched: Dict[str, List[str]] = {}
        self._device = None
        self._load_s = None

    def load(self, options: Dict[str, Any]) -> None:
        t0 = time.perf_counter()
        options = dict(options or {})
        # Every option is checked before the slow imports: a typo fails the boot at once.
        _hub.prompt_for("text", PROMPTS, options)
        self._sizes = (_hub.positive(options, "base_size", 1024), _hub.positive(options, "image_size", 640),
                       _options.flag(options, "crop_mode", True))
        attn = _options.text(options, "attn_implementation", "eager")
        patch = _options.flag(options, "patch_remote_code", False)
        threads = _hub.cpu_threads(options)
        # The weights before torch: without them the load fails in a second, not after torch's import.
        folder = _hub.resolve_weights(options, DEFAULT_WEIGHTS)
        import torch
        from transformers import AutoModel, AutoTokenizer

        _hub.apply_threads(torch, threads)
        self._options = options
        device = _hub.torch_device(torch, options)
        dtype = _hub.torch_dtype(torch, options, device)
        if patch:
            self._patched = patch_remote_code(folder)
        else:
            check_remote_code_imports()
        if not device.startswith("cuda"):
            raise LoadError("DeepSeek-OCR runs on CUDA only: its remote code's infer() moves every page to "
                            "CUDA (device %r); set the model's device to cuda on a machine with a GPU" % device)
        self._tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
        model = AutoModel.from_pretrained(folder, trust_remote_code=True, use_safetensors=True,
                                          _attn_implementation=attn, torch_dtype=dtype)
        self._model = model.eval().to(device).to(dtype)
        self._device = device
        self._load_s = time.perf_counter() - t0

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        images, fmt, _ = check_ocr_request(request)
        pages = _hub.page_images(images)
        prompt = _hub.prompt_for(fmt, PROMPTS, self._options)
        base_size, image_size, crop_mode = self._sizes
        out = []
        work = tempfile.mkdtemp(prefix="venvserve-deepseek-")
        try:
            for n, image in enumerate(pages, 1):
                # infer() opens the file itself: hand it the decoded, upright RGB page.
                path = os.path.join(work, "page-%d.png" % n)
                image.save(path)
                with self._lock:
                    text = self._model.infer(
                        self._tokenizer, prompt=prompt, image_file=path, output_path=work,
                        base_size=base_size, image_size=image_size, crop_mode=crop_mode,
                        save_results=False, test_compress=False, eval_mode=True)
                out.append({"page": n, "text": clean_output(text or "")})
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return {"pages": out}

    def info(self) -> Dict[str, Any]:
        versions: Dict[str, Any] = dict(package_versions(PACKAGES))
        if self._patched:
            versions["remote-code-patch"] = "patched " + ", ".join(sorted(self._patched))
        return versions
