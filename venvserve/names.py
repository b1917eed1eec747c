"""Validation of the names that reach the filesystem: model ids and env names.

Both become parts of paths (sockets, env folders, measured-memory files), so
they are checked once here and nowhere else: no ``..``, no absolute paths,
no empty segments, nothing but letters, digits, ``._-`` (and ``/`` between
segments of a model id, as in ``deepseek-ai/DeepSeek-OCR``).
"""

import re

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
ENV_NAME = re.compile(rf"^{_SEGMENT}$")
MODEL_ID = re.compile(rf"^{_SEGMENT}(/{_SEGMENT}){{0,3}}$")


def is_env_name(name: str) -> bool:
    return bool(ENV_NAME.match(name)) and ".." not in name


def is_model_id(model_id: str) -> bool:
    return bool(MODEL_ID.match(model_id)) and ".." not in model_id


def slug(model_id: str) -> str:
    """A single path segment for a model id (``a/b`` → ``a--b``)."""
    return model_id.replace("/", "--")
