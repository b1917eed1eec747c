"""Checked reads of a model's catalog ``options``, for ``load()``.

Each raises ``OptionError`` naming the option, what it accepts and what it
got, so a typo in the catalog stops the worker at boot with one clear line
instead of failing every request later.
"""

from typing import Any, Dict, Iterable, Optional

from .base import OptionError


def _fail(key: str, accepted: str, value: Any) -> OptionError:
    return OptionError("option %r must be %s (got %r)" % (key, accepted, value))


def positive_int(options: Dict[str, Any], key: str, default: Optional[int] = None) -> Optional[int]:
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(key, "a positive integer", value)
    return value


def number(options: Dict[str, Any], key: str, default: Optional[float], low: float = 0.0,
           high: float = float("inf")) -> Optional[float]:
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        accepted = "a number from %g to %g" % (low, high) if high != float("inf") else "a number >= %g" % low
        raise _fail(key, accepted, value)
    return float(value)


def flag(options: Dict[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise _fail(key, "true or false", value)
    return value


def choice(options: Dict[str, Any], key: str, default: Any, allowed: Iterable[Any]) -> Any:
    allowed = tuple(allowed)
    value = options.get(key, default)
    if value not in allowed or isinstance(value, bool) != isinstance(default, bool):
        raise _fail(key, "one of " + ", ".join(repr(a) for a in allowed), value)
    return value


def text(options: Dict[str, Any], key: str, default: Optional[str] = None) -> Optional[str]:
    value = options.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(key, "a non-empty string", value)
    return value


def mapping(options: Dict[str, Any], key: str) -> Dict[str, Any]:
    value = options.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(key, "an object of engine settings", value)
    return dict(value)
