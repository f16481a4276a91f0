"""Runners: feed the change feed to your own projector and remember how far it got.

:func:`run` reads the store's feed (every version in commit order, see
:meth:`eventstore.EventStore.feed`) after the runner's checkpoint, a feed position kept in the
table (item ``pk="_checkpoint#<name>", sk="c"``), so a run never misses a version appended
anywhere after it, whatever stream it went to. Two kinds of projector:

- ``handle(version)``: called for each version; the checkpoint is saved after each page. A run
  that stops (an exception, a crash, a timeout) resumes after the last saved page: versions of the
  page it was in are handed over again. At least once, nothing skipped: make ``handle``
  idempotent (an upsert keyed by resource id and version is).
- ``project(version) -> list[Append]``: for a projector that writes into the same store. The
  appends it returns are committed with the checkpoint moved to that version, in one atomic write
  (:class:`eventstore.Checkpoint`), so each version is applied exactly once, across crashes; a
  second runner of the same name is refused (``ConcurrencyError``) instead of applying twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventstore import Append, Checkpoint, records
from eventstore.backends.base import Delete, Key, Put
from eventstore.errors import InvalidInput
from eventstore.keys import check_type_name
from eventstore.resource import Resource, Version
from eventstore.store import EventStore


class Projector(Protocol):
    """What :func:`run` feeds at least once: ``handle`` is called once per version, in feed
    order (and again for the versions of an unfinished page when a run resumes)."""

    def handle(self, version: Version[Any]) -> None: ...


class WritingProjector(Protocol):
    """What :func:`run` feeds exactly once: the appends ``project`` returns for a version are
    committed together with the runner's checkpoint."""

    def project(self, version: Version[Any]) -> Sequence[Append[Any]]: ...


@dataclass
class RunReport:
    """What one :func:`run` did: versions handed over, pages completed, the feed position it
    started after and the last position it handled (its saved checkpoint)."""

    name: str
    handled: int = 0
    pages: int = 0
    started_after: int = 0
    checkpoint: int = 0
    seconds: float = 0.0
    #: Versions passed over because they were trimmed (or were past ``max_age``) before the
    #: runner reached them.
    skipped_trimmed: int = 0
    #: Commits made by a writing projector.
    commits: int = 0


def checkpoint_key(name: str) -> Key:
    """The table key of a runner's checkpoint item."""
    return records.checkpoint_key(_check_name(name))


def load_checkpoint(store: EventStore, name: str) -> int | None:
    """The feed position a runner saved last, or ``None``."""
    item = store.backend.get([checkpoint_key(name)])[0]
    return None if item is None else records.checkpoint_position(item)


def save_checkpoint(store: EventStore, name: str, position: int) -> None:
    """Store a runner's checkpoint (one small unconditional write)."""
    key = checkpoint_key(name)
    store.backend.write([Put(records.checkpoint_item(key, str(position)))])


def reset_checkpoint(store: EventStore, name: str) -> None:
    """Forget a runner's checkpoint: its next run starts from the beginning of the feed."""
    store.backend.write([Delete(checkpoint_key(name))])


def run(
    store: EventStore,
    projector: Projector | WritingProjector,
    *,
    name: str | None = None,
    types: Sequence[type[Resource]] | None = None,
    resource_type: type[Resource] | None = None,
    partition: int = 0,
    page_size: int = 50,
    max_pages: int | None = None,
) -> RunReport:
    """Feed the projector every version after the runner's checkpoint in feed ``partition``
    (of ``types``, or ``resource_type``, or all), page by page; stop at the end of the feed or
    after ``max_pages`` pages (for work split across invocations, e.g. one Lambda call each).

    ``name`` identifies the runner's checkpoint (default: the projector's ``name`` attribute, or
    its class name). An exception from the projector propagates; the checkpoint stays at the last
    page completed (``handle``) or the last version committed (``project``)."""
    label = name if name is not None else getattr(projector, "name", type(projector).__name__)
    label = _check_name(label)
    if max_pages is not None and (
        isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1
    ):
        raise InvalidInput(f"max_pages must be an int >= 1 or None, got {max_pages!r}")
    if resource_type is not None:
        types = [*(types or ()), resource_type]
    project = getattr(projector, "project", None)
    began = time.monotonic()
    after = load_checkpoint(store, label) or 0
    report = RunReport(label, started_after=after, checkpoint=after)
    pages = store.feed_pages(after, types=types, partition=partition, page_size=page_size)
    for page in pages:
        for version in page.versions:
            if callable(project):
                appends = list(project(version))
                if appends:
                    position = version.position or report.checkpoint
                    move = Checkpoint(label, report.checkpoint, position)
                    store.append_many(appends, checkpoint=move)
                    report.checkpoint, report.commits = position, report.commits + 1
            else:
                projector.handle(version)  # type: ignore[union-attr]
            report.handled += 1
        if page.last != report.checkpoint:
            if callable(project):
                store.move_checkpoint(Checkpoint(label, report.checkpoint, page.last))
            else:
                save_checkpoint(store, label, page.last)
            report.checkpoint = page.last
        report.skipped_trimmed += page.skipped
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
