# venvserve: one image, one gateway, one env per model family.
#
# The image holds the gateway (the main env: FastAPI, uv, no torch) and the env
# templates. The models' envs are built by uv on first use into the data
# volume (/data), or at build time:
#
#   docker build --build-arg PREINSTALL_ENVS="rapidocr deepseek-ocr" -t venvserve .
#
# which runs `venvserve envs install`, the command tests/test_docker_sequence.py
# runs outside Docker. GPU envs take several GiB each (torch + CUDA wheels).
FROM python:3.11-slim

# tesseract for the `tesseract` model; nothing else is compiled or installed
# system-wide: every model env installs from wheels. (Debian's package versions
# are not pinned: the base image's security updates replace them.)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VENVSERVE_DATA_DIR=/data \
    VENVSERVE_CATALOG=/app/models.json \
    VENVSERVE_ENVS_DIR=/app/envs \
    UV_CACHE_DIR=/data/uv-cache \
    UV_PYTHON_INSTALL_DIR=/data/uv-python \
    UV_NO_PROGRESS=1

# The gateway: venvserve and its dependencies (uv among them), plus NVML
# bindings so that it can see the GPUs and their memory.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY venvserve ./venvserve
COPY worker_runtime ./worker_runtime
RUN pip install --no-cache-dir . nvidia-ml-py

# The catalog and the env templates (pyproject.toml + uv.lock each).
COPY models.json ./
COPY envs ./envs

# A non-root user owns the data dir. uv's cache lives in the data dir too, so
# that the envs built there are hard links into it (same filesystem).
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin venvserve \
    && mkdir -p /data \
    && chown venvserve:venvserve /data
USER 1000:1000

# Optional: build envs into the image. The uv cache is dropped afterwards
# (the envs keep their files); a named volume mounted on /data starts as a
# copy of them.
ARG PREINSTALL_ENVS=""
RUN if [ -n "$PREINSTALL_ENVS" ]; then venvserve envs install $PREINSTALL_ENVS && rm -rf "$UV_CACHE_DIR"; fi

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VENVSERVE_PORT', '8000'), timeout=4); sys.exit(r.status != 200)"]

# 0.0.0.0 makes the server reachable from outside the container: set
# VENVSERVE_API_KEY (docker-compose.yml requires it), or anyone who can reach
# the port can use every model. venvserve warns at start-up when it is unset.
CMD ["venvserve", "serve", "--host", "0.0.0.0"]
