"""Reading streams: the latest version, one by number or id, ranges page by page, replays over
many streams, and the versions index entries name.

Another writer's append may trim versions (and their keyframe) between two requests of one read.
Every path here tells that apart from damage: a version whose keyframe is gone is looked up against
its head; if the head's retention bound has passed it, the version was trimmed while being read
(:class:`VersionNotFound`, or skipped and counted where a read covers many streams). Only a keyframe
missing under a version the head still holds is :class:`CorruptRecord`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from eventstore import bridge, codec, records
from eventstore.backends.base import Backend, Item, SortCondition
from eventstore.cursors import ReplayPosition
from eventstore.errors import CorruptRecord, Shredded, StreamNotFound, VersionNotFound
from eventstore.ids import parse_version_id
from eventstore.keyframes import KeyframeCache
from eventstore.keys import (
    HEAD_SK,
    KEYFRAME_INTERVAL,
    VERSION_PREFIX,
    keyframe_of,
    keyframe_sk,
    split_pk,
    version_sk,
)
from eventstore.resource import Resource, Version, resource_class

R = TypeVar("R", bound=Resource)
T = TypeVar("T")

#: Called with the number of versions a many-stream read skipped because they were trimmed.
OnTrimmed = Callable[[int], None]

# A latest read that finds its version trimmed under it (only a racing erase or a keyframe seen
# half-written can do that) reads again this many times.
_LATEST_ROUNDS = 3


def scanned_heads(backend: Backend) -> Iterator[Item]:
    """The head of every resource stream of the table, deleted and erasing streams included,
    read by one full scan (for the rare passes over everything: export, the index's repair)."""
    start: Item | None = None
    while True:
        page = backend.scan(start=start)
        for item in page.items:
            if item[records.SK] == HEAD_SK and str(item[records.PK])[:1].isalpha():
                yield item  # not versions, feed entries, checkpoints, eventsourcing's items
        if page.last_key is None:
            return
        start = page.last_key


@dataclass(frozen=True)
class ReplayPage:
    """Consecutive versions of a replay and the checkpoint right after the last of them: pass
    ``checkpoint`` as ``after=`` to continue with the version that follows. ``skipped`` counts
    the versions this page passed over because another writer trimmed them while they were
    being read, or because their subject's key was shredded."""

    items: list[Version[Any]]
    checkpoint: str
    skipped: int = 0


@dataclass(frozen=True)
class FeedEntry:
    """One position of the feed, without the state: what ``eventstore feed`` prints.
    ``event`` is ``None`` for a version without one, and for one trimmed since (``trimmed``)."""

    position: int
    resource_type: str
    resource_id: str
    version: int
    event: str | None
    trimmed: bool


@dataclass(frozen=True)
class FeedPage:
    """Consecutive feed positions up to ``last``: the versions among them that are still held
    (and of the types asked for), or their entries when states are not decoded."""

    versions: list[Version[Any]]
    entries: list[FeedEntry]
    last: int
    #: Versions of the page (of the types asked for) trimmed, or past ``max_age``, since they
    #: were committed.
    skipped: int = 0


@dataclass(frozen=True)
class StoredState:
    """A version as stored, with its state as the exact JSON bytes it was written with (no
    model, no upcasting): what ``eventstore show``, ``history`` and ``export`` print."""

    stored: records.StoredVersion
    state: bytes


class Expired(VersionNotFound):
    """A superseded version older than its type's ``max_age``: reads pass over it."""


#: In a feed page's entries: a position whose version was trimmed since, stream unknown (a
#: stream key is never this).
_GAP = "?"


def _needs_keyframe(item: Item | None) -> bool:
    blob = None if item is None else item.get(records.STATE)
    return isinstance(blob, bytes) and codec.needs_base(blob)


class Reader:
    """Decodes versions read from ``backend``; keyframes it meets go into ``cache``. ``clock``
    (seconds since the epoch) decides which versions are past their ``max_age``."""

    def __init__(
        self,
        backend: Backend,
        cache: KeyframeCache,
        max_state: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.max_state = max_state
        self.clock = clock

    # -- decoding ---------------------------------------------------------------------------

    def keyframe(self, pk: str, base: int, item: Item) -> bytes:
        """Decode a keyframe item and remember it for the appends that follow (a keyframe
        already cached from the same stored bytes is not decoded again)."""
        stored = item.get(records.STATE)
        if isinstance(stored, bytes):
            known = self.cache.decoded(pk, base, stored)
            if known is not None:
                return known
        data = records.keyframe_state(pk, base, item, self.max_state)
        blob = stored if isinstance(stored, bytes) else None
        self.cache.put(pk, base, data, blob, records.keyframe_id(item))
        return data

    def fetch_keyframe(
        self, pk: str, base: int, *, consistent: bool
    ) -> tuple[bytes, str | None] | None:
        """Read a keyframe by key: its JSON and its id (``None`` if it is not there)."""
        item = self.backend.get([(pk, keyframe_sk(base))], consistent=consistent)[0]
        if item is None:
            return None
        return self.keyframe(pk, base, item), records.keyframe_id(item)

    def decode(
        self, cls: type[R], stored: records.StoredVersion, keyframes: Mapping[int, bytes]
    ) -> Version[R]:
        """Decode a stored version; its keyframe comes from ``keyframes`` (decoded JSON by
        keyframe number), the cache, or a read. :class:`VersionNotFound` if the version was
        trimmed while it was being read (:class:`Expired` if it is past ``max_age``)."""
        bridge.pause()  # a page of versions decodes in turns with other tasks (eventstore.aio)
        if stored.superseded and cls.max_age is not None:
            age_ms = cls.max_age.total_seconds() * 1000
            if parse_version_id(stored.version_id)[1] + age_ms < self.clock() * 1000:
                raise Expired(*split_pk(stored.pk), stored.number, None)
        return records.to_version(cls, stored, self._base(stored, keyframes), self.max_state)

    def _base(self, stored: records.StoredVersion, keyframes: Mapping[int, bytes]) -> bytes | None:
        """The keyframe JSON a stored version is decoded against (``None`` if it needs none):
        from ``keyframes``, the cache, or a read that tells trimming from damage."""
        if not stored.needs_keyframe:
            return None
        assert stored.base is not None
        found = keyframes.get(stored.base) or self.cache.get(stored.pk, stored.base)
        return found if found is not None else self._lost_keyframe(stored)

    def _lost_keyframe(self, stored: records.StoredVersion) -> bytes:
        assert stored.base is not None
        pk, base = stored.pk, stored.base
        # Twice: a batch read is not a snapshot on DynamoDB, so the first head may predate the
        # trim that removed the keyframe; the second is read after the keyframe was missed.
        for _ in range(2):
            keyframe, head = self.backend.get([(pk, keyframe_sk(base)), records.head_key(pk)])
            if keyframe is not None:
                return self.keyframe(pk, base, keyframe)
            if head is None:
                raise StreamNotFound(*split_pk(pk))
            held = records.head(head)
            if stored.number < held.lowest:
                raise VersionNotFound(*split_pk(pk), stored.number, held.remaining)
        raise CorruptRecord(*split_pk(pk), stored.number, f"keyframe {base} is missing")

    def missing(self, pk: str, requested: int | str, *, consistent: bool = True) -> Exception:
        """The error for a version that is not there: which versions remain, or no stream."""
        item = self.backend.get([records.head_key(pk)], consistent=consistent)[0]
        if item is None:
            return StreamNotFound(*split_pk(pk))
        return VersionNotFound(*split_pk(pk), requested, records.head(item).remaining)

    # -- single versions --------------------------------------------------------------------

    def by_number(
        self, cls: type[R], pk: str, number: int, version_id: str | None, *, consistent: bool
    ) -> Version[R]:
        """Version ``number`` (which must carry ``version_id`` when given): one read of the
        version and its keyframe."""
        base = keyframe_of(number, KEYFRAME_INTERVAL)
        if self.backend.queries_round_once:
            item, keyframe = self._with_keyframe(pk, number, base, consistent=consistent)
        else:
            item, keyframe = self.backend.get(
                [records.version_key(pk, number), (pk, keyframe_sk(base))], consistent=consistent
            )
        if item is None or (version_id is not None and item.get(records.VERSION_ID) != version_id):
            raise self.missing(pk, version_id or number)
        stored = records.stored_version(pk, number, item)
        known: dict[int, bytes] = {}
        if keyframe is not None and stored.needs_keyframe:
            known[base] = self.keyframe(pk, base, keyframe)  # a whole version needs none
        try:
            return self.decode(cls, stored, known)
        except Expired:
            raise self.missing(pk, version_id or number) from None
        except VersionNotFound as e:
            if version_id is None:
                raise
            raise VersionNotFound(*split_pk(pk), version_id, e.remaining) from None

    def _with_keyframe(
        self, pk: str, number: int, base: int, *, consistent: bool
    ) -> tuple[Item | None, Item | None]:
        """The items of version ``number`` and of its group's keyframe, from one query over the
        sort keys between them. Its cost is their sizes with the later versions of the group,
        rounded up once: for small deltas, a read unit less than two point reads. A group too
        big for one page gives no keyframe; decoding then reads it as it reads a lost one."""
        items = self.backend.query(
            pk,
            sk=SortCondition("between", version_sk(number), keyframe_sk(base)),
            consistent=consistent,
        ).items
        item = items[0] if items and items[0][records.SK] == version_sk(number) else None
        keyframe = items[-1] if items and items[-1][records.SK] == keyframe_sk(base) else None
        return item, keyframe

    def latest(self, cls: type[R], pk: str, *, consistent: bool) -> Version[R]:
        """The latest version: one query for the two newest items (the current group's keyframe
        sorts just above its versions)."""
        for attempt in range(_LATEST_ROUNDS):
            keyframes: dict[int, bytes] = {}
            top: records.StoredVersion | None = None
            start: Item | None = None
            while True:
                page = self.backend.query(
                    pk,
                    sk=SortCondition("begins_with", VERSION_PREFIX),
                    forward=False,
                    limit=2,
                    consistent=consistent,
                    start=start,
                )
                for item in page.items:
                    position = records.sort_position(item)
                    if position is None:
                        continue
                    number, is_keyframe = position
                    if is_keyframe:
                        # A shredded keyframe: the version is Shredded too, under its own number.
                        with contextlib.suppress(Shredded):
                            keyframes[number] = self.keyframe(pk, number, item)
                    elif top is None:
                        top = records.stored_version(pk, number, item)
                # A keyframe larger than a page (SQLite's 1 MB) comes alone: the version under
                # it is on the next page.
                if top is not None or page.last_key is None or len(page.items) >= 2:
                    break
                start = page.last_key
            if top is None or top.deleted:
                raise StreamNotFound(*split_pk(pk))
            try:
                return self.decode(cls, top, keyframes)
            except VersionNotFound:
                if attempt == _LATEST_ROUNDS - 1:
                    raise
        raise AssertionError("unreachable")

    def named_by(
        self, cls: type[R], heads: list[Item], *, consistent: bool
    ) -> list[Version[R] | None]:
        """The versions index entries (or heads) name, read by key in one batch (version and
        keyframe), in the order of ``heads``. An entry whose version has been trimmed since is
        answered with the stream's latest version; a stream gone since with ``None``."""
        keys: list[tuple[str, str]] = []
        for entry in heads:
            pk, number = str(entry[records.PK]), records.number(entry, records.VERSION)
            keys += [records.version_key(pk, number), records.keyframe_key(pk, number)]
        found = self.backend.get(keys, consistent=consistent) if keys else []
        versions: list[Version[R] | None] = []
        for i, entry in enumerate(heads):
            pk, number = str(entry[records.PK]), records.number(entry, records.VERSION)
            item, keyframe = found[2 * i], found[2 * i + 1]
            version: Version[R] | None = None
            with contextlib.suppress(StreamNotFound):
                if item is not None:
                    base = keyframe_of(number, KEYFRAME_INTERVAL)
                    known = {base: self.keyframe(pk, base, keyframe)} if keyframe else {}
                    with contextlib.suppress(VersionNotFound):
                        stored = records.stored_version(pk, number, item)
                        version = self.decode(cls, stored, known)
                if version is None:
                    # Trimmed since the index entry was read, or not yet visible to an
                    # eventually consistent read: the latest version stands in for it.
                    version = self.latest(cls, pk, consistent=True)
            versions.append(version)
        return versions

    # -- ranges -----------------------------------------------------------------------------

    def stream(
        self,
        cls: type[R],
        pk: str,
        lower: int,
        stop: int | None,
        *,
        reverse: bool = False,
        consistent: bool = True,
        on_trimmed: OnTrimmed | None = None,
    ) -> Iterator[Version[R]]:
        """Versions ``lower <= n < stop`` of a stream, a page at a time. Versions trimmed while
        the range is read raise :class:`VersionNotFound`, or with ``on_trimmed`` are skipped and
        counted. :class:`StreamNotFound` if the stream holds nothing at all."""

        def decode(stored: records.StoredVersion, keyframes: Mapping[int, bytes]) -> Version[R]:
            return self.decode(cls, stored, keyframes)

        return self._range(decode, pk, lower, stop, reverse, consistent, on_trimmed)

    def stored_states(
        self,
        pk: str,
        lower: int = 1,
        stop: int | None = None,
        *,
        reverse: bool = False,
        on_trimmed: OnTrimmed | None = None,
    ) -> Iterator[StoredState]:
        """:meth:`stream` without a resource class: each version with its state as the JSON it
        was stored with, expired versions included (no class, so no ``max_age`` to apply)."""

        def decode(stored: records.StoredVersion, keyframes: Mapping[int, bytes]) -> StoredState:
            base = self._base(stored, keyframes)
            return StoredState(stored, records.state_json(stored, base, self.max_state))

        return self._range(decode, pk, lower, stop, reverse, True, on_trimmed)

    def _range(
        self,
        decode: Callable[[records.StoredVersion, Mapping[int, bytes]], T],
        pk: str,
        lower: int,
        stop: int | None,
        reverse: bool,
        consistent: bool,
        on_trimmed: OnTrimmed | None,
    ) -> Iterator[T]:
        if stop is not None and stop <= lower:
            if self.backend.get([records.head_key(pk)], consistent=consistent)[0] is None:
                raise StreamNotFound(*split_pk(pk))
            return
        # A group's keyframe sorts just above its last version: the range reaches up to the
        # keyframe of the last group it touches.
        low_sk = version_sk(lower)
        high_sk = keyframe_sk(keyframe_of(stop - 1)) if stop is not None else VERSION_PREFIX + "~"
        keyframes: dict[int, bytes] = {}
        pending: list[records.StoredVersion] = []
        seen = False
        for page in self.backend.pages(
            pk,
            sk=SortCondition("between", low_sk, high_sk),
            forward=not reverse,
            consistent=consistent,
        ):
            for item in page.items:
                position = records.sort_position(item)
                if position is None:
                    continue
                number, is_keyframe = position
                if is_keyframe:
                    # Going backwards a keyframe comes before its group's versions; going
                    # forwards after them, and the pending versions are the ones waiting for it.
                    try:
                        keyframes = {number: self.keyframe(pk, number, item)}
                    except Shredded:
                        keyframes = {}  # each version of the group is Shredded on its own
                    yield from self._decoded(decode, pending, keyframes, on_trimmed)
                    pending.clear()
                    continue
                if number < lower or (stop is not None and number >= stop):
                    continue
                seen = True
                stored = records.stored_version(pk, number, item)
                if not reverse and (pending or stored.needs_keyframe):
                    pending.append(stored)
                else:
                    yield from self._decoded(decode, [stored], keyframes, on_trimmed)
        yield from self._decoded(decode, pending, keyframes, on_trimmed)
        if not seen and self.backend.get([records.head_key(pk)], consistent=consistent)[0] is None:
            raise StreamNotFound(*split_pk(pk))

    def _decoded(
        self,
        decode: Callable[[records.StoredVersion, Mapping[int, bytes]], T],
        stored: list[records.StoredVersion],
        keyframes: Mapping[int, bytes],
        on_trimmed: OnTrimmed | None,
    ) -> Iterator[T]:
        for position, one in enumerate(stored):
            try:
                version = decode(one, keyframes)
            except Expired:
                continue  # past max_age: not returned by any read
            except Shredded:
                if on_trimmed is None:
                    raise
                on_trimmed(1)  # a replay passes over it, and counts it
                continue
            except VersionNotFound:
                if on_trimmed is None:
                    raise
                # Trimming removes the oldest versions first, so every one still waiting with it
                # (same group, same missing keyframe) went in the same write.
                rest = [s for s in stored[position:] if s.base == one.base]
                on_trimmed(len(rest))
                yield from self._decoded(
                    decode, stored[position + len(rest) :], keyframes, on_trimmed
                )
                return
            yield version

    # -- the feed -----------------------------------------------------------------------------

    def feed_pages(
        self,
        partition: int,
        after: int,
        *,
        types: frozenset[str] | None = None,
        decode: bool = True,
        page_size: int = 50,
    ) -> Iterator[FeedPage]:
        """The feed of ``partition`` after position ``after``, a page at a time, up to the first
        position not yet visible. Versions trimmed since, of other types, or of types not defined
        in this process are passed over (the page's ``last`` still moves past them)."""
        if self.backend.feed_in_items:
            yield from self._positioned_pages(partition, after, types, decode, page_size)
            return
        position = after
        while True:
            first = position + 1
            block = records.entry_block(partition, first)
            page = self.backend.query(
                block,
                sk=SortCondition(">=", records.entry_sk(first)),
                limit=page_size,
                consistent=True,
            )
            entries: list[tuple[int, str, int]] = []
            gap = False
            for item in page.items:
                for found in records.feed_entries(item):
                    if found[0] < first:
                        continue  # a chunk's positions before the ones asked for
                    if found[0] != first + len(entries):
                        gap = True  # a commit not visible yet: never read past a gap
                        break
                    entries.append(found)
                if gap:
                    break
            if not entries:
                return
            for start in range(0, len(entries), page_size):
                part = entries[start : start + page_size]
                # An erased stream's entries (no stream key) are listed, never decoded.
                wanted = [
                    e
                    for e in part
                    if (not e[1] and not decode)
                    or (e[1] and (types is None or split_pk(e[1])[0] in types))
                ]
                yield self._feed_page(wanted, part[-1][0], decode)
            position = entries[-1][0]
            if gap:
                return
            if page.last_key is None and records.entry_block(partition, position + 1) == block:
                return

    def _positioned_pages(
        self,
        partition: int,
        after: int,
        types: frozenset[str] | None,
        decode: bool,
        page_size: int,
    ) -> Iterator[FeedPage]:
        """:meth:`feed_pages` where the backend keeps the feed in the items: one query per page
        gives the versions themselves. Its writes are serialised and atomic, so a position
        missing below one it returns is never filled later: a version trimmed since (which
        stream it was is not known any more)."""
        # Up to the last position given out when the read starts, as the entries' last page
        # bounds that read: a runner that writes into the store does not chase its own writes.
        end = self.backend.last_position(partition)
        position = after
        while position < end:
            items = [
                item
                for item in self.backend.positioned(partition, position, limit=page_size)
                if records.number(item, records.POSITION) <= end
            ]
            if not items:
                return
            entries: list[tuple[int, str, int]] = []
            found: dict[tuple[str, str], Item | None] = {}
            for item in items:
                entry = records.positioned_entry(item)
                if types is None:
                    # Of unknown type: not counted among asked-for types' trimmed versions.
                    entries += [(gap, _GAP, 0) for gap in range(position + 1, entry[0])]
                position = entry[0]
                if entry[1] and (types is None or split_pk(entry[1])[0] in types):
                    entries.append(entry)
                    found[records.version_key(entry[1], entry[2])] = item
                elif not entry[1] and not decode:
                    entries.append(entry)  # an erased stream's position: listed, not decoded
            yield self._feed_page(entries, position, decode, found)

    def _feed_page(
        self,
        entries: list[tuple[int, str, int]],
        last: int,
        decode: bool,
        found: dict[tuple[str, str], Item | None] | None = None,
    ) -> FeedPage:
        found = {} if found is None else found
        keys: list[tuple[str, str]] = []
        for _, pk, number in entries:
            if not pk or pk == _GAP:
                continue  # an erased stream's position, or one trimmed since
            version = records.version_key(pk, number)
            if version not in found:
                keys.append(version)
            # The keyframe is read with its versions, never taken from the cache alone: a stream
            # erased and made again under the same id has other keyframes under the same keys.
            if decode and (version not in found or _needs_keyframe(found[version])):
                keys.append(records.keyframe_key(pk, number))
        unique = list(dict.fromkeys(keys))
        if unique:
            found.update(zip(unique, self.backend.get(unique), strict=True))
        versions: list[Version[Any]] = []
        listed: list[FeedEntry] = []
        skipped = 0
        for position, pk, number in entries:
            if pk == _GAP:
                if decode:
                    skipped += 1
                else:
                    listed.append(FeedEntry(position, "(trimmed)", "", 0, None, True))
                continue
            if not pk:
                listed.append(FeedEntry(position, "(erased)", "", 0, None, True))
                continue
            item = found.get(records.version_key(pk, number))
            type_name, rid = split_pk(pk)
            if not decode:
                event = None if item is None else item.get(records.EVENT)
                listed.append(
                    FeedEntry(
                        position,
                        type_name,
                        rid,
                        number,
                        event if isinstance(event, str) else None,
                        item is None,
                    )
                )
                continue
            cls = resource_class(type_name)
            if cls is None:
                continue
            if item is None:
                skipped += 1
                continue
            base = keyframe_of(number, KEYFRAME_INTERVAL)
            keyframe = found.get(records.keyframe_key(pk, number))
            stored = records.stored_version(pk, number, item)
            if stored.position is None:
                # Indexed feeds keep positions in the index only, not on the version item.
                stored = dataclasses.replace(stored, position=position)
            try:
                known = {base: self.keyframe(pk, base, keyframe)} if keyframe is not None else {}
                versions.append(self.decode(cls, stored, known))
            except (VersionNotFound, StreamNotFound):
                skipped += 1
        return FeedPage(versions, listed, last, skipped)

    def replay_pages(
        self, classes: list[type[Resource]], position: ReplayPosition | None, size: int
    ) -> Iterator[ReplayPage]:
        """:meth:`replay` in pages of at most ``size`` versions, each with its checkpoint."""
        batch: list[Version[Any]] = []
        trimmed, reported = [0], 0

        def count(n: int) -> None:
            trimmed[0] += n

        for version, mark in self.replay(classes, position, count):
            batch.append(version)
            if len(batch) >= size:
                yield ReplayPage(batch, mark.encode(), trimmed[0] - reported)
                batch, reported = [], trimmed[0]
        if batch:
            yield ReplayPage(batch, mark.encode(), trimmed[0] - reported)

    def replay(
        self,
        classes: list[type[Resource]],
        position: ReplayPosition | None,
        on_trimmed: OnTrimmed,
    ) -> Iterator[tuple[Version[Any], ReplayPosition]]:
        """Every retained version of every stream of ``classes`` (streams in creation order),
        continuing after ``position``, each with the position right after it."""
        for cls in classes:
            type_name = cls.resource_type
            start: Item | None = None
            if position is not None and position.type_name == type_name:
                # First the rest of the stream the checkpoint is in, then the streams after it.
                with contextlib.suppress(StreamNotFound):
                    for version in self.stream(
                        cls, position.pk, position.version + 1, None, on_trimmed=on_trimmed
                    ):
                        mark = ReplayPosition(
                            type_name, position.listed, position.pk, version.version
                        )
                        yield version, mark
                start = records.listing_start(position.pk, type_name, position.listed)
            for page in self.backend.pages(type_name, index=records.LISTING, start=start):
                for entry in page.items:
                    pk, listed = str(entry[records.PK]), records.listing_position(entry)
                    with contextlib.suppress(StreamNotFound):
                        for version in self.stream(cls, pk, 1, None, on_trimmed=on_trimmed):
                            yield version, ReplayPosition(type_name, listed, pk, version.version)
