"""Replay runners: feed stored versions to your own projector and remember how far it got.

A projector is any object with ``handle(version)``. :func:`run` replays the store (see
:meth:`eventstore.EventStore.replay` for the order), calls ``handle`` for each version, and after
each page saves the page's checkpoint in the table (item ``pk="_checkpoint#<name>", sk="c"``). A run
that stops (an exception, a crash, a timeout) resumes after the last saved page: versions of the
page it was in are handed to ``handle`` again. Delivery is at least once, never skipping a version
that was there; make ``handle`` idempotent (an upsert keyed by resource id and version is).
One runner per name at a time: two runners sharing a name overwrite each other's checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from eventstore import records
from eventstore.backends.base import Delete, Key, Put
from eventstore.errors import InvalidInput
from eventstore.keys import check_type_name
from eventstore.resource import Resource, Version
from eventstore.store import EventStore


class Projector(Protocol):
    """What :func:`run` feeds: ``handle`` is called once per version, in replay order (and again
    for the versions of an unfinished page when a run resumes)."""

    def handle(self, version: Version[Any]) -> None: ...


@dataclass
class RunReport:
    """What one :func:`run` did: versions handed over, pages completed, the checkpoint it started
    from and the one it saved last (``None``: none yet)."""

    name: str
    handled: int = 0
    pages: int = 0
    started_after: str | None = None
    checkpoint: str | None = None
    seconds: float = 0.0
    #: Versions passed over because another writer trimmed them while they were being read.
    skipped_trimmed: int = 0


def checkpoint_key(name: str) -> Key:
    """The table key of a runner's checkpoint item. The leading ``_`` keeps it apart from every
    stream (stream partition keys start with a type name, which starts with a letter)."""
    return (f"_checkpoint#{_check_name(name)}", "c")


def load_checkpoint(store: EventStore, name: str) -> str | None:
    """The checkpoint a runner saved last, or ``None``."""
    return records.checkpoint_value(store.backend.get([checkpoint_key(name)])[0])


def save_checkpoint(store: EventStore, name: str, checkpoint: str) -> None:
    """Store a runner's checkpoint (one small unconditional write)."""
    key = checkpoint_key(name)
    store.backend.write([Put(records.checkpoint_item(key, checkpoint))])


def reset_checkpoint(store: EventStore, name: str) -> None:
    """Forget a runner's checkpoint: its next run starts from the beginning."""
    store.backend.write([Delete(checkpoint_key(name))])


def run(
    store: EventStore,
    projector: Projector,
    *,
    name: str | None = None,
    resource_type: type[Resource] | None = None,
    page_size: int = 100,
    max_pages: int | None = None,
) -> RunReport:
    """Feed ``projector.handle`` every version after the runner's checkpoint, saving the
    checkpoint after each page of ``page_size`` versions; stop at the end of the replay or after
    ``max_pages`` pages (for work split across invocations, e.g. one Lambda call each).

    ``name`` identifies the runner's checkpoint (default: the projector's ``name`` attribute, or
    its class name). ``resource_type`` limits the replay to one type; keep it the same across runs
    of one name. An exception from ``handle`` propagates; the checkpoint stays at the last
    completed page."""
    label = name if name is not None else getattr(projector, "name", type(projector).__name__)
    label = _check_name(label)
    if max_pages is not None and (
        isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1
    ):
        raise InvalidInput(f"max_pages must be an int >= 1 or None, got {max_pages!r}")
    began = time.monotonic()
    after = load_checkpoint(store, label)
    report = RunReport(label, started_after=after, checkpoint=after)
    for page in store.replay_pages(resource_type, after=after, page_size=page_size):
        for version in page.items:
            projector.handle(version)
            report.handled += 1
        report.skipped_trimmed += page.skipped
        save_checkpoint(store, label, page.checkpoint)
        report.checkpoint = page.checkpoint
        report.pages += 1
        if max_pages is not None and report.pages >= max_pages:
            break
    report.seconds = time.monotonic() - began
    return report


def _check_name(name: object) -> str:
    try:
        return check_type_name(name)
    except ValueError as e:
        raise InvalidInput(f"runner name: {e}") from e
