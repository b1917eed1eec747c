"""``python -s -m venvserve_worker.pull ARCHITECTURE OPTIONS_JSON``: download a
model's weights with its backend's own code, in the model's env.

`venvserve models pull` runs this with the data dir's model caches in the
environment (HF_HOME, MODELSCOPE_CACHE, PADDLE_PDX_CACHE_HOME), the caches
the workers read. The last stdout line is ``VENVSERVE-PULL <json>``: what
pull() returned, or null when the backend downloads nothing. Stdlib only.
"""

import json
import sys

MARKER = "VENVSERVE-PULL "


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.stderr.write("usage: python -m venvserve_worker.pull ARCHITECTURE OPTIONS_JSON\n")
        return 2
    from .registry import resolve_backend

    backend = resolve_backend(argv[0])
    pull = getattr(backend, "pull", None)
    result = pull(json.loads(argv[1])) if pull is not None else None
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
