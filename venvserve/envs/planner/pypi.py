"""PyPI's simple index (JSON, PEP 691): a release's Requires-Python."""

import json
import urllib.request

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

SIMPLE = "https://pypi.org/simple/{}/"


def release_of(filename: str) -> tuple[str, str] | None:
    """(canonical name, version) of a wheel or sdist file name."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return name, str(version)


def requires_python(dist: str, version: str, timeout: float = 10) -> tuple[bool, str | None]:
    """(answered, Requires-Python of ``dist`` ``version``); (False, None) when PyPI cannot be asked."""
    request = urllib.request.Request(SIMPLE.format(dist), headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            files = json.loads(response.read()).get("files", [])
    except (OSError, ValueError):
        return False, None
    specs = [f.get("requires-python") for f in files if release_of(f.get("filename", "")) == (dist, version)]
    return True, next((s for s in specs if s), None)
