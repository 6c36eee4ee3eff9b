"""JSON that never holds NaN or infinity: strict parsers (and jq, and JavaScript) reject them, and a
missing number is honestly ``null``. Every JSON file the benchmark writes goes through :func:`dumps`."""

from __future__ import annotations

import json
import math
from typing import Any


def clean(obj: Any) -> Any:
    """``obj`` with every NaN/inf float (numpy included) replaced by None, tuples as lists."""
    if isinstance(obj, float) or type(obj).__name__ in ("float32", "float64", "float16"):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if type(obj).__name__ in ("int64", "int32", "bool_"):
        return obj.item()
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`clean` (obj), refusing NaN outright should any slip through."""
    kwargs.setdefault("indent", 2)
    kwargs.setdefault("default", str)
    return json.dumps(clean(obj), allow_nan=False, **kwargs)
