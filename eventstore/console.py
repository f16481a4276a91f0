"""What the command line shares: loading ``module:Class`` arguments and writing durations for
people."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


class NotFound(ValueError):
    """A ``module:attribute`` argument that names nothing importable."""


def load_object(spec: str) -> Any:
    """The object named ``module:attribute`` (dots allowed in both parts). The current directory
    is importable, as it is for ``python -m``. :class:`NotFound` says what is wrong."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise NotFound(f"{spec!r}: write module:Class, e.g. shop.models:Order")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise NotFound(f"cannot import {module_name!r}: {e}") from e
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise NotFound(f"{module_name!r} has no attribute {attribute!r}") from None
    return found


def duration(seconds: float) -> str:
    """``0.42 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
