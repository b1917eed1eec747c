"""Wire constants shared by the worker runtime and the gateway.

The gateway may import this module; it must stay stdlib-only and import
nothing else from the runtime.
"""

# Environment variable holding the worker's JSON configuration.
CONFIG_ENV = "VENVSERVE_WORKER_CONFIG"

# The worker writes exactly one line to the ready pipe, then closes it:
#   "ready <json of /info>"      the model is loaded, requests may flow
# A worker that cannot boot writes nothing there and exits with EXIT_BOOT_ERROR.
READY_PREFIX = "ready "

# Exit status of a worker whose backend could not be imported or loaded:
# the supervisor marks the model failed instead of respawning it forever.
EXIT_BOOT_ERROR = 3

# Header carrying the per-worker secret when the worker listens on TCP.
TOKEN_HEADER = "X-Venvserve-Token"

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
}
