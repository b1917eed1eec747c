"""Architecture names → backend classes.

A catalog entry's ``architecture`` is a built-in name below or any
``module:Class`` importable in the model's env. Stdlib only, and it imports
no backend until asked: the gateway reads this table too.
"""

import importlib

# Built-in architectures: name -> "module:Class" inside venvserve_worker.backends.
BUILTIN_BACKENDS = {
    "echo": "venvserve_worker.backends.echo:EchoBackend",
    "rapidocr": "venvserve_worker.backends.rapidocr:RapidOCRBackend",
    "rapidocr-onnxruntime": "venvserve_worker.backends.rapidocr_onnxruntime:RapidOCRv4Backend",
    "tesseract": "venvserve_worker.backends.tesseract:TesseractBackend",
    "deepseek": "venvserve_worker.backends.deepseek:DeepSeekOCRBackend",
    "mineru": "venvserve_worker.backends.mineru:MinerUBackend",
    "hunyuan-ocr": "venvserve_worker.backends.hunyuan:HunyuanOCRBackend",
    "paddle": "venvserve_worker.backends.paddle:PaddleOCRBackend",
    "easyocr": "venvserve_worker.backends.easyocr:EasyOCRBackend",
}


def target(architecture):
    """("module", "Class") the architecture names; ValueError if it names neither form."""
    module_name, _, class_name = BUILTIN_BACKENDS.get(architecture, architecture).partition(":")
    if not module_name or not class_name:
        raise ValueError("architecture %r is neither built in (%s) nor 'module:Class'"
                         % (architecture, ", ".join(sorted(BUILTIN_BACKENDS))))
    return module_name, class_name


def resolve_backend(architecture):
    """The backend class; ImportError or AttributeError when the env lacks it."""
    module_name, class_name = target(architecture)
    module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise AttributeError("module %s has no backend class %r" % (module_name, class_name)) from None
