"""Key rotation: re-wrap every data key under the provider's current master key (a new local
master key, or a new KMS key), without touching any state. Readers work throughout, provided
they can unwrap both wrappings (a LocalKeyProvider given the old master key as ``previous``; KMS
unwraps either by itself)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from eventstore.encryption.layer import Keys


@dataclass
class Rotation:
    """How far a rotation got: subjects seen, keys re-wrapped, keys already under the current
    master key, keys that went (shredded) or changed while being re-wrapped."""

    subjects: int = 0
    rewrapped: int = 0
    current: int = 0
    gone: int = 0
    seconds: float = 0.0


def rotate(keys: Keys, *, progress: Callable[[Rotation], None] | None = None) -> Rotation:
    """Re-wrap each key of ``keys.store`` that another master key wrapped; safe to run while
    writers and readers run, and again after an interruption."""
    report = Rotation()
    began = time.monotonic()
    provider = keys.provider
    for subject, wrapped, by in keys.store.subjects():
        report.subjects += 1
        if by == provider.name:
            report.current += 1
            continue
        context = keys.context(subject)
        key = provider.unwrap(wrapped, context, by)
        if keys.store.replace(subject, wrapped, provider.rewrap(key, context), provider.name):
            report.rewrapped += 1
        else:
            report.gone += 1  # shredded meanwhile (or rotated by another run)
        if progress is not None and report.subjects % 100 == 0:
            report.seconds = time.monotonic() - began
            progress(report)
    report.seconds = time.monotonic() - began
    if progress is not None:
        progress(report)
    return report
