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

# Its last line on stderr is then BOOT_FAILURE_PREFIX + the reason in plain words
# (a missing module, a bad catalog option, weights not found); any traceback
# comes before that line.
BOOT_FAILURE_PREFIX = "venvserve-worker: cannot boot: "

# Exit status of a worker whose backend could not be imported or loaded:
# the supervisor marks the model failed instead of respawning it forever.
EXIT_BOOT_ERROR = 3

# Header carrying the per-worker secret when the worker listens on TCP.
TOKEN_HEADER = "X-Venvserve-Token"

# Upper bound of a request body when the worker config sets none ("max_body_bytes").
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024

# The table of built-in architectures lives in registry.py (stdlib only, it
# imports no backend); this name stays here for callers not yet moved there.
from .registry import BUILTIN_BACKENDS  # noqa: E402,F401
