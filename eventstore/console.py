"""What the command lines share: loading ``module:Class`` arguments, progress lines and
durations written for people."""

from __future__ import annotations

import importlib
import os
import sys
import time
from typing import Any, TextIO


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


class ProgressLine:
    """The progress of a long command on ``stream`` (stderr): redrawn in place on a terminal, at
    most ten times a second; a line every ``every`` seconds elsewhere (logs, CI), so a long run
    neither floods a log nor stays silent. Used as a context manager, it ends the line on exit
    (:meth:`end`)."""

    def __init__(self, stream: TextIO, every: float = 2.0) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._every = every
        self._last: float | None = None
        self._width = 0  # of the line drawn in place, which a shorter one must cover

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()

    def show(self, text: str, *, final: bool = False) -> None:
        """Show ``text`` now if it is ``final`` or enough time has passed, else skip it."""
        now = time.monotonic()
        wait = 0.1 if self._tty else self._every
        if not final and self._last is not None and now - self._last < wait:
            return
        self._last = now
        if self._tty:
            self._stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            if final:
                self._end_line()
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def end(self) -> None:
        """Finish a line drawn in place, so that what is printed next starts on its own."""
        if self._width:
            self._end_line()
            self._stream.flush()

    def _end_line(self) -> None:
        self._stream.write("\n")
        self._width = 0
