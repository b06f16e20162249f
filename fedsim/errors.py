"""The one exception type users see for bad input, and the check that makes one; the CLI prints it as one line."""

import math


class FedsimError(ValueError):
    """A problem with user input (config, data file, checkpoint), with the fix in its message."""


def require(ok: bool, key: str, allowed: str, value: object, *, finite: bool = True) -> None:
    """One line naming the key, its value and the allowed range; NaN and ±inf fail unless ``finite=False``."""
    if finite and isinstance(value, float) and not math.isfinite(value):
        ok, allowed = False, f"{allowed} and finite"
    if not ok:
        raise FedsimError(f"{key}={value!r} is out of range: must be {allowed}; fix the override or conf/ file")
