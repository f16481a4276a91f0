"""Versions as JSON lines: what ``eventstore show``, ``history`` and ``export`` print, and what
``import`` reads back (a backup, or a move between backends).

One line per stored version. The state comes first and holds the exact JSON bytes the version was
stored with, so an import stores the same bytes: ``{"state":{...},"type":"Order","id":"...",
"version":3,"version_id":"...","recorded_at":"...","schema":1,"event":"paid","metadata":{...},
"deleted":false,"expires":null,"listed":"..."}``. ``listed`` is the id the stream's head is
listed by (its creation order), ``expires`` the expiry of a superseded version of a type with
``max_age``. A version of an encrypted type is written sealed with its subject's key instead:
``{"sealed":"<base64>","subject":"...",...}`` (the same fields after).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from eventstore import records
from eventstore.backends.base import Item, Value
from eventstore.errors import (
    ConcurrencyError,
    InvalidInput,
    InvalidKey,
    KeysMissing,
    Shredded,
    WrongType,
)
from eventstore.ids import parse_version_id, recorded_at
from eventstore.inputs import NO_STREAM, Expect, metadata_json
from eventstore.keys import check_resource_id, check_type_name, split_pk, stream_pk
from eventstore.reading import StoredState, scanned_heads
from eventstore.resource import Resource, check_resource_class, resource_classes
from eventstore.store import EventStore
from eventstore.writing import Prepared, Restored

_STATE_PREFIX = '{"state":'
_DECODER = json.JSONDecoder()
#: Versions per commit of an import: with their feed entries and keyframes, well inside
#: DynamoDB's 100 actions; fewer when their states are large (``_CHUNK_BYTES``).
_CHUNK = 40
_CHUNK_BYTES = 2_000_000


def version_fields(found: StoredState) -> dict[str, Any]:
    """A stored version's fields (all but the state), as JSON values."""
    stored = found.stored
    type_name, rid = split_pk(stored.pk)
    moment = recorded_at(stored.version_id)
    return {
        "type": type_name,
        "id": rid,
        "version": stored.number,
        "version_id": stored.version_id,
        "recorded_at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "schema": stored.schema,
        "event": stored.event,
        "metadata": json.loads(stored.metadata) if stored.metadata else {},
        "position": stored.position,
        "deleted": stored.deleted,
        "expires": stored.expires,
    }


def version_line(found: StoredState, listed: str | None) -> str:
    """One version as one JSON line (no newline), its state bytes written as stored."""
    fields = version_fields(found)
    del fields["position"]  # a position belongs to the feed of the table it was read from
    fields["listed"] = listed
    rest = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return _STATE_PREFIX + found.state.decode() + "," + rest[1:]


def stream_heads(store: EventStore, types: Collection[str] | None = None) -> Iterator[Item]:
    """The head of every resource stream of the table (of ``types`` only, if given), deleted
    streams included, read by one full scan of the table."""
    for item in scanned_heads(store.backend):
        if types is None or split_pk(str(item[records.PK]))[0] in types:
            yield item


@dataclass
class ExportReport:
    streams: int = 0
    versions: int = 0
    skipped_trimmed: int = 0
    seconds: float = 0.0


def export(
    store: EventStore,
    out: TextIO,
    *,
    types: Collection[str | type[Resource]] | None = None,
    progress: Callable[[ExportReport], None] | None = None,
    every: float = 2.0,
    decrypt: bool = False,
) -> ExportReport:
    """Write every retained version of every stream (of ``types``, if given) to ``out``, one
    JSON line each, streams one after another, each oldest version first. Versions trimmed by
    another writer during the export are skipped and counted. ``progress`` is called every
    ``every`` seconds and at the end.

    States of encrypted types stay encrypted: each is sealed with its subject's data key (bound
    to its stream and version), so shredding the subject reaches the file too, and no key is
    written into it; an import opens them with the same key store. ``decrypt=True`` writes them
    in plaintext instead, for a file you protect yourself. Versions already shredded are
    skipped and counted with the trimmed ones."""
    report = ExportReport()
    began = last = time.monotonic()
    types = type_names(types)
    for name in sorted(types or ()):
        # A type name nobody wrote (a typo) would export nothing, silently.
        listings = (name, records.deleted_listing(name))
        if not any(
            store.backend.query(listing, index=records.LISTING, limit=1).items
            for listing in listings
        ):
            raise InvalidInput(f"the table holds no streams of type {name!r}")

    def skipped(n: int) -> None:
        report.skipped_trimmed += n

    for head in stream_heads(store, types):
        pk = str(head[records.PK])
        listed = head.get(records.LISTING_SK)
        report.streams += 1
        for found in store.reader.stored_states(pk, on_trimmed=skipped):
            line = version_line(found, listed if isinstance(listed, str) else None)
            if found.stored.subject is not None and not decrypt:
                try:
                    line = _sealed_line(store, found, line)
                except Shredded:
                    skipped(1)  # shredded since it was read: passed over, as one shredded before
                    continue
            out.write(line + "\n")
            report.versions += 1
        now = time.monotonic()
        if progress is not None and now - last >= every:
            report.seconds, last = now - began, now
            progress(report)
    report.seconds = time.monotonic() - began
    if progress is not None:
        progress(report)
    return report


_SEALED_PREFIX = '{"sealed":'


def _export_aad(pk: str, number: int, subject: str) -> bytes:
    return b"\x00".join(x.encode() for x in ("eventstore export", pk, str(number), subject))


def _keys(store: EventStore) -> Any:
    keys = getattr(store.backend, "keys", None) if store.backend.encrypts else None
    if keys is None:
        raise KeysMissing(
            "the export holds encrypted states: open the store with keys= (and the key store "
            "of the store it came from)"
        )
    return keys


def _sealed_line(store: EventStore, found: StoredState, line: str) -> str:
    """``line`` with its state sealed by the subject's key: ``{"sealed":..., "subject":...}``."""
    from eventstore.encryption.cipher import seal

    subject = found.stored.subject
    assert subject is not None
    key = _keys(store).for_reading(subject)
    if key is None:
        raise Shredded(*split_pk(found.stored.pk), found.stored.number, subject)
    sealed = seal(key, found.state, _export_aad(found.stored.pk, found.stored.number, subject))
    rest = line[len(_STATE_PREFIX) + len(found.state) + 1 :]
    head = json.dumps({"sealed": base64.b64encode(sealed).decode(), "subject": subject})
    return head[:-1] + "," + rest


def _opened(store: EventStore, one: ExportedVersion) -> ExportedVersion | None:
    """``one`` with its state opened, if it was sealed; ``None`` when its subject's key was
    shredded since the export."""
    if one.subject is None:
        return one
    from eventstore.encryption.cipher import Unsealable, unseal

    key = _keys(store).for_reading(one.subject)
    if key is None:
        return None
    try:
        state = unseal(key, one.state, _export_aad(one.pk, one.number, one.subject))
    except Unsealable as e:
        raise InvalidInput(
            f"line {one.line}: the sealed state does not open with its subject's key ({e}: "
            "another key store, or a damaged line)"
        ) from e
    return dataclasses.replace(one, state=state, subject=None)


@dataclass(frozen=True)
class ExportedVersion:
    """One line of an export, checked: the fields and the exact state bytes."""

    line: int
    resource_type: str
    resource_id: str
    number: int
    version_id: str
    schema: int
    event: str | None
    metadata: Mapping[str, Any]
    deleted: bool
    expires: int | None
    listed: str | None
    #: The state's JSON; for a line of an encrypted type, its sealed bytes (``subject`` set).
    state: bytes
    subject: str | None = None

    @property
    def pk(self) -> str:
        return stream_pk(self.resource_type, self.resource_id)


def parse_line(text: str, line: int) -> ExportedVersion:
    """One export line; :class:`InvalidInput` naming the line if it is not one."""

    def bad(reason: str) -> InvalidInput:
        return InvalidInput(f"line {line}: {reason}")

    sealed = text.startswith(_SEALED_PREFIX)
    if not sealed and not text.startswith(_STATE_PREFIX):
        raise bad('not an eventstore export line (it must start with {"state": or {"sealed":)')
    try:
        end = 0 if sealed else _DECODER.raw_decode(text, len(_STATE_PREFIX))[1]
        fields = json.loads(text)
    except ValueError as e:
        raise bad(f"not JSON: {e}") from e
    if not isinstance(fields, dict):
        raise bad("not a JSON object")
    state, subject = text[len(_STATE_PREFIX) : end].encode(), None
    if sealed:
        subject = fields.get("subject")
        if not isinstance(subject, str) or not subject:
            raise bad("a sealed state without its subject")
        try:
            state = base64.b64decode(fields["sealed"], validate=True)
        except (ValueError, TypeError, binascii.Error) as e:
            raise bad(f"the sealed state is not base64: {e}") from e
    try:
        number, vid = fields["version"], fields["version_id"]
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise bad(f"bad version {number!r}")
        if parse_version_id(vid)[0] != number:
            raise bad(f"version id {vid} is not one of version {number}")
        schema, expires = fields["schema"], fields["expires"]
        if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
            raise bad(f"bad schema {schema!r}")
        if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)):
            raise bad(f"bad expiry {expires!r}")
        event, metadata, listed = fields["event"], fields["metadata"], fields["listed"]
        if event is not None and not isinstance(event, str):
            raise bad(f"bad event {event!r}")
        if not isinstance(metadata, dict):
            raise bad("metadata is not an object")
        if listed is not None and not isinstance(listed, str):
            raise bad(f"bad listing id {listed!r}")
        if not isinstance(fields["deleted"], bool):
            raise bad("deleted is not true or false")
        return ExportedVersion(
            line,
            check_type_name(fields["type"]),
            check_resource_id(fields["id"]),
            number,
            vid,
            schema,
            event,
            metadata,
            fields["deleted"],
            expires,
            listed,
            state,
            subject,
        )
    except KeyError as e:
        raise bad(f"missing field {e}") from e
    except (InvalidInput, InvalidKey) as e:
        if str(e).startswith(f"line {line}:"):
            raise
        raise bad(str(e)) from e


def exported_streams(lines: Iterable[str]) -> Iterator[list[ExportedVersion]]:
    """The versions of an export, a stream at a time (an export writes each stream's versions
    together, oldest first); :class:`InvalidInput` naming the line where that does not hold."""
    done: set[str] = set()
    stream: list[ExportedVersion] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        one = parse_line(text.rstrip("\n"), number)
        if stream and one.pk != stream[0].pk:
            done.add(stream[0].pk)
            yield stream
            stream = []
        if one.pk in done:
            raise InvalidInput(
                f"line {number}: {one.resource_type} {one.resource_id!r} appeared earlier in the "
                "file: an export keeps each stream's versions together"
            )
        if stream and one.number <= stream[-1].number:
            raise InvalidInput(
                f"line {number}: version {one.number} of {one.resource_type} "
                f"{one.resource_id!r} comes after version {stream[-1].number}"
            )
        stream.append(one)
    if stream:
        yield stream


@contextlib.contextmanager
def _lines(path: str | Path) -> Iterator[Iterator[str]]:
    """The file's lines as text; :class:`InvalidInput` naming the first that is not UTF-8."""
    if not isinstance(path, (str, Path)):
        raise WrongType(f"path must be a str or a Path, got {type(path).__name__}")
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise InvalidInput(f"cannot read {str(path)!r}: {e.strerror or e}") from e

    def decoded() -> Iterator[str]:
        for number, line in enumerate(raw, 1):
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InvalidInput(f"line {number}: not UTF-8 text ({e.reason})") from None

    with raw:
        yield decoded()


def type_names(types: object) -> set[str] | None:
    """Type names given as names or as Resource classes (``None``: every type);
    :class:`WrongType` for anything else."""
    if types is None:
        return None
    if isinstance(types, (str, type)) or not isinstance(types, Iterable):
        raise WrongType("types must be a list of type names or Resource classes, not one")
    names: set[str] = set()
    for one in types:
        if isinstance(one, str):
            names.add(check_type_name(one))
        elif isinstance(one, type) and issubclass(one, Resource):
            names.add(check_resource_class(one).resource_type)
        else:
            raise WrongType(f"types holds {one!r}: give type names or Resource classes")
    return names


@dataclass
class ImportReport:
    """``versions`` written in ``commits``; ``present`` versions were already there (a rerun
    of the same import skips them); ``expired`` versions were left out because DynamoDB had
    already deleted a newer expired version of their stream (they are past ``max_age`` too);
    ``shredded`` versions were sealed for a subject whose key was shredded since the export."""

    streams: int = 0
    versions: int = 0
    present: int = 0
    expired: int = 0
    shredded: int = 0
    commits: int = 0
    seconds: float = 0.0


def import_file(
    store: EventStore,
    path: str | Path,
    classes: Iterable[type[Resource] | str],
    *,
    progress: Callable[[ImportReport], None] | None = None,
    every: float = 2.0,
) -> ImportReport:
    """Write the versions of an export file into ``store``: each keeps its number, id (so its
    time), schema, event, metadata, expiry and its state's exact bytes; streams keep their
    creation order in listings. New feed positions are given in the order of the file.

    The whole file is checked first (every line parses, each state reads back under its class,
    which ``classes`` must hold for every type in the file): a bad file raises
    :class:`InvalidInput` naming the line, and nothing is written. Streams already in the store
    with the same versions are skipped, so an interrupted import can be run again; a stream
    that holds something else raises :class:`ConcurrencyError` and the import stops there.
    Projections declared on ``store`` are written for each stream's latest state; rebuild the
    others afterwards."""
    by_name = {cls.resource_type: cls for cls in resource_classes(classes)}
    began = time.monotonic()
    with _lines(path) as lines:
        for stream in exported_streams(lines):
            cls = by_name.get(stream[0].resource_type)
            if cls is None:
                raise InvalidInput(
                    f"line {stream[0].line}: no class given for type {stream[0].resource_type}"
                )
            for one in stream:
                opened = _opened(store, one)
                if opened is not None:
                    _state(cls, opened)
    report = ImportReport()
    last = time.monotonic()
    with _lines(path) as lines:
        for stream in exported_streams(lines):
            found = [_opened(store, one) for one in stream]
            readable = [one for one in found if one is not None]
            if len(readable) < len(found):
                # Its subject was shredded since the export: nothing of it can be read.
                report.shredded += len(found) - len(readable)
                continue
            _import_stream(
                store, by_name[stream[0].resource_type], _after_gap(readable, report), report
            )
            now = time.monotonic()
            if progress is not None and now - last >= every:
                report.seconds, last = now - began, now
                progress(report)
    report.seconds = time.monotonic() - began
    if progress is not None:
        progress(report)
    return report


def _state(cls: type[Resource], one: ExportedVersion) -> Resource:
    stored = records.StoredVersion(
        one.pk, one.number, one.version_id, one.state, None, one.event, None, schema=one.schema
    )
    try:
        return records.state_of(cls, one.state, stored)
    except Exception as e:
        raise InvalidInput(f"line {one.line}: {e}") from e


def _after_gap(stream: list[ExportedVersion], report: ImportReport) -> list[ExportedVersion]:
    # Only DynamoDB's deletion of expired versions leaves gaps, and every version older than an
    # expired one expired before it: the stream resumes after its last gap.
    start = 0
    for i in range(1, len(stream)):
        if stream[i].number != stream[i - 1].number + 1:
            start = i
    report.expired += start
    return stream[start:]


def _import_stream(
    store: EventStore, cls: type[Resource], stream: list[ExportedVersion], report: ImportReport
) -> None:
    first = stream[0]
    head = store.backend.get([records.head_key(first.pk)])[0]
    expected: int | Expect = NO_STREAM
    if head is not None:
        # Already (partly) there from an earlier run of the same import: go on after it.
        at = records.number(head, records.VERSION)
        held = {one.number: one for one in stream}
        same = held.get(at)
        head_id = head.get(records.VERSION_ID)
        if same is None or (head_id != same.version_id and not records.is_deleted(head)):
            raise ConcurrencyError(first.resource_type, first.resource_id, NO_STREAM, at)
        report.present += sum(1 for one in stream if one.number <= at)
        stream = [one for one in stream if one.number > at]
        expected = at
    report.streams += 1
    size, chunk = 0, list[ExportedVersion]()
    for one in stream:
        if chunk and (len(chunk) >= _CHUNK or size + len(one.state) > _CHUNK_BYTES):
            expected = _commit(store, cls, chunk, expected, report)
            size, chunk = 0, []
        chunk.append(one)
        size += len(one.state)
    if chunk:
        _commit(store, cls, chunk, expected, report)


def _commit(
    store: EventStore,
    cls: type[Resource],
    chunk: list[ExportedVersion],
    expected: int | Expect,
    report: ImportReport,
) -> int:
    prepared = []
    for i, one in enumerate(chunk):
        state = _state(cls, one)
        index_set: dict[str, Value] = {}
        index_remove: frozenset[str] = frozenset()
        if i == len(chunk) - 1:  # the head carries the newest version's projection keys
            index_set, index_remove = store.indexes.head_attributes(cls.resource_type, state)
        prepared.append(
            Prepared(
                cls,
                one.resource_id,
                one.pk,
                expected if i == 0 else one.number - 1,
                one.state,
                state,
                one.event,
                metadata_json(one.metadata),
                index_set,
                index_remove,
                deleted=one.deleted,
                restored=Restored(one.number, one.version_id, one.schema, one.expires, one.listed),
            )
        )
    store.writer.commit(prepared)
    report.versions += len(chunk)
    report.commits += 1
    return chunk[-1].number
