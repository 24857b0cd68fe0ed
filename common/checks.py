"""The error vocabulary for configuration values: one ConfigError type and one table of value kinds,
so that every message says the same thing for the same rule (`key=value is not allowed (allowed: ...)`)."""
from __future__ import annotations

import math

import numpy as np


class ConfigError(ValueError):
    """A configuration value of the wrong type or out of range (one line, naming key and value)."""


def is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
        and math.isfinite(value)


def is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


# kind -> (test, what is allowed)
VALUE_KINDS = {
    "int>=1": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "int>=0": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "seed": (lambda v: is_int(v) and v >= -1, "an integer >= 0, or -1 for a random seed"),
    "number>0": (lambda v: is_number(v) and v > 0, "a finite number > 0"),
    "number>=0": (lambda v: is_number(v) and v >= 0, "a finite number >= 0"),
    "number": (is_number, "a finite number"),
    "(0,1]": (lambda v: is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "[0,1]": (lambda v: is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "[0,1)": (lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "[-1,1]": (lambda v: is_number(v) and -1 <= v <= 1, "a number in [-1, 1]"),
    "bool": (lambda v: isinstance(v, bool), "True or False"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "tags": (lambda v: isinstance(v, (list, tuple)) and all(isinstance(t, str) and 0 < len(t) <= 64 for t in v),
             "a list of strings of 1 to 64 characters, e.g. [walking,v2]"),
}


def check_value(value, key: str, kind: str):
    """`value` if it is of `kind` (a VALUE_KINDS key); a one-line ConfigError naming key, value and
    what is allowed otherwise."""
    test, allowed = VALUE_KINDS[kind]
    if not test(value):
        raise ConfigError(f"{key}={value!r} is not allowed (allowed: {allowed})")
    return value


def positive_int(value, key: str) -> int:
    return int(check_value(value, key, "int>=1"))


def positive_float(value, key: str) -> float:
    return float(check_value(value, key, "number>0"))


def check_choice(value, key: str, choices) -> str:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is unknown (allowed: {', '.join(map(str, choices))})")
    return value


def check_range(value, key: str, unit: str = "", low: float | None = None, high: float | None = None
                ) -> tuple[float, float]:
    """A `[lo, hi]` pair of finite numbers with lo <= hi, inside [low, high] where given."""
    bounds = []
    if low is not None:
        bounds.append(f">= {low:g}")
    if high is not None:
        bounds.append(f"<= {high:g}")
    allowed = f"[lo, hi], two numbers{' in ' + unit if unit else ''} with lo <= hi" + \
        (f", each {' and '.join(bounds)}" if bounds else "")
    ok = (isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) for v in value)
          and value[0] <= value[1] and (low is None or value[0] >= low) and (high is None or value[1] <= high))
    if not ok:
        shown = list(value) if isinstance(value, tuple) else value
        raise ConfigError(f"{key}={shown!r} is not allowed (allowed: {allowed})")
    return float(value[0]), float(value[1])


def section(parent: dict, key: str, path: str) -> dict:
    """`parent[key]`, which must be a mapping (a YAML section) whose full name is `path.key`."""
    value = parent.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{path}.{key}={value!r} is not allowed (allowed: a section of keys)")
    return value


def number(parent: dict, key: str, path: str, kind: str = "number") -> float:
    """`parent[key]` as a float, checked against a VALUE_KINDS kind."""
    return float(check_value(parent.get(key), f"{path}.{key}", kind))


def optional(parent: dict, key: str, path: str, kind: str):
    """`parent[key]` checked against a VALUE_KINDS kind, or None where the key is absent or null (the default)."""
    value = parent.get(key)
    if value is None:
        return None
    test, allowed = VALUE_KINDS[kind]
    if not test(value):
        raise ConfigError(f"{path}.{key}={value!r} is not allowed (allowed: {allowed}, or null)")
    return value
