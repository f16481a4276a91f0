"""DynamoDB: requests, item sizes and capacity units per operation, eventstore beside simplesingletable.

Run from the repository root, against Amazon's DynamoDB Local started for the run::

    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/dynamodb_costs.py

(``--json`` prints the figures as JSON; ``--endpoint-url`` points at another DynamoDB Local. The
script refuses to run without an endpoint, so it never touches a real AWS account by accident.)

Workload, the same for both libraries, each on its own fresh table created by its own helper
(``EventStore.create_table`` / ``simplesingletable.utils.create_standard_dynamodb_table``):
case documents (nested customer, sections of prose, line items, comments, timestamps; words
drawn from a fixed vocabulary with a seeded random, plus ids, amounts and dates) of about 2 KB,
32 KB and 128 KB of JSON. Each is created, then updated 20 times with a small edit (a status,
priority or assignee change, one line item's quantity, or one appended comment; the activity stamp
always moves), with ``max_versions = 10`` on both sides. Then the latest version and every older
retained version (12-20) are read, strongly consistent on both sides. ``--streams`` documents of
each size are run.

simplesingletable 22.0.0 is used as its README shows: a ``DynamoDbVersionedResource`` with its
default gzip compression and ``resource_config["max_versions"] = 10``, written with
``DynamoDbMemory.create_new``/``update_existing`` and read with ``read_existing``. Its per-type
counter (``track_stats``, an extra GetItem and UpdateItem per create, not part of versioning) is
switched off, which only lowers its figures.

How the figures are obtained:

- requests: every HTTP request, counted by a ``before-send`` botocore hook on each client the
  libraries use (ours: the store's client; simplesingletable: its low-level client and the client
  behind its ``boto3.resource`` table). For eventstore the count is checked against
  ``store.backend.requests()``.
- item sizes: DynamoDB's rule (attribute name bytes + value bytes; numbers 1 byte + 1 per two
  significant digits; binary its raw length; maps/lists 3 bytes + 1 byte per element), computed on
  the wire format of the requests and of a final raw ``Scan`` of each table. For eventstore's items
  the result is checked against ``eventstore.backends.sizes.item_size``.
- write units: each write action in a captured request costs ``ceil(size / 1 KB)`` units (at
  least 1), doubled inside ``TransactWriteItems``, where size is the larger of the item before and
  after the write (DynamoDB bills puts and updates that way; a delete is billed on the deleted
  item). "Before" comes from a shadow copy of each table kept from what was written: a put's item
  is taken from the request, an updated item is read back after the operation with a separate
  client whose requests are not counted. Table units only; index (GSI) units are shown apart.
- index units: one write of ``ceil(entry / 1 KB)`` per GSI whose entry is created, changed or
  removed (two when the index key changes), where an entry is the table and index keys plus the
  projected attributes; not doubled in transactions.
- read units: strongly consistent ``ceil(size / 4 KB)`` per GetItem / per BatchGetItem item, the
  sum of the returned items' full sizes rounded up to 4 KB per Query; halved for eventually
  consistent reads (simplesingletable's own pre-update read is eventually consistent).
- operations per second: wall clock of the library call only, on DynamoDB Local (a single local
  JVM, about 1 ms per request); they compare request counts and payloads, not AWS latency.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import logging
import math
import os
import platform
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from importlib.metadata import version as dist_version
from typing import Any

import boto3
from pydantic import BaseModel
from simplesingletable import DynamoDbMemory, DynamoDbVersionedResource
from simplesingletable.models import ResourceConfig
from simplesingletable.utils import create_standard_dynamodb_table

import eventstore
from eventstore import EventStore, Resource, codec
from eventstore.backends import sizes
from eventstore.backends.sizes import item_size
from eventstore.keyframes import KeyframeCache
from eventstore.keys import parse_sk

MAX_VERSIONS = 10
UPDATES = 20
#: Reads by number cover every retained version but the latest (12-20 of 21 with 10 kept).
OLD_VERSIONS = range(UPDATES + 2 - MAX_VERSIONS, UPDATES + 1)
READ_BY_NUMBER = f"read v{OLD_VERSIONS[0]}-v{OLD_VERSIONS[-1]}"
SIZES = {"2 KB": 2 * 1024, "32 KB": 32 * 1024, "128 KB": 128 * 1024}
REGION = "us-east-1"
ENDPOINT_VAR = "EVENTSTORE_DYNAMODB_ENDPOINT"

# -- the documents -----------------------------------------------------------------------------

# Words of a customer-support / claims vocabulary, drawn with Zipf-like weights (frequent words
# first), so prose compresses like prose rather than like noise or like one repeated phrase.
WORDS = """
the of and to a in is that for it on with as was be by this are at from or have an not which
but all were we when your can there been has more if will one would their what so about out up
them some could into other time than then now only its may also after first should any these
two very just where most over such new well because back through much before good each those
customer claim order payment refund invoice account delivery parcel shipment warehouse carrier
address report issue request ticket agent manager review approval policy contract coverage
damage replacement return label tracking number reference amount balance credit charge fee
discount price quote estimate schedule appointment visit inspection technician engineer site
meeting call email message letter document photo attachment evidence statement receipt
confirmed pending escalated resolved reopened cancelled approved rejected assigned waiting
received sent checked updated verified noted requested arranged expected delayed missing broken
damaged incorrect duplicate partial complete urgent standard priority internal external
previous following current remaining additional original final initial monthly annual weekly
please thanks regards hello morning afternoon today tomorrow yesterday week month quarter year
kitchen bathroom roof window door floor wall ceiling boiler heating pipe leak water electrical
wiring socket fuse panel meter cable router modem signal outage network connection device
laptop screen battery charger keyboard printer software license subscription renewal upgrade
migration backup restore password login access permission role team department region branch
office store depot supplier vendor partner courier driver route van truck pallet box item unit
quantity weight volume size colour model serial batch lot expiry warranty guarantee repair
service maintenance cleaning installation removal disposal collection pickup dropoff handover
signature consent notice deadline reminder follow confirmation summary outcome decision reason
explanation apology compensation goodwill gesture voucher exchange adjustment correction
calculation assessment valuation liability excess deductible premium benefit limit exclusion
condition clause section paragraph appendix schedule annex version draft copy original
understand explain describe mention notice suggest recommend agree decline accept refuse
continue stop start finish arrive leave call write reply forward attach upload download share
discuss confirm check verify inspect measure test replace repair install remove order deliver
""".split()  # noqa: SIM905 - a word list reads better as text

FIRST = """Ada Grace Alan Barbara Edsger Frances Donald Margaret Ken Radia Tim Sophie Linus Hedy
""".split()  # noqa: SIM905
LAST = """Lovelace Hopper Turing Liskov Dijkstra Allen Knuth Hamilton Thompson Perlman Berners-Lee
Wilson Torvalds Lamarr""".split()  # noqa: SIM905
CITIES = """Lyon Bordeaux Nantes Lille Toulouse Rennes Grenoble Dijon Angers Nancy Metz Brest
""".split()  # noqa: SIM905
STATUSES = ["new", "triage", "in_progress", "waiting_customer", "escalated", "resolved"]
PRIORITIES = ["low", "normal", "high", "urgent"]
TEAMS = ["billing", "logistics", "claims", "field-service", "it-support"]
_WEIGHTS = [1.0 / (rank + 8) for rank in range(len(WORDS))]


class Address(BaseModel):
    line1: str
    line2: str
    city: str
    postcode: str
    country: str


class Party(BaseModel):
    id: str
    name: str
    email: str
    phone: str
    address: Address


class Section(BaseModel):
    heading: str
    paragraphs: list[str]
    edited_at: datetime
    edited_by: str


class LineItem(BaseModel):
    sku: str
    description: str
    quantity: int
    unit_price: Decimal
    tax_rate: Decimal


class Comment(BaseModel):
    id: str
    author: str
    posted_at: datetime
    visibility: str
    text: str


class CaseFields(BaseModel):
    """The document both libraries store (their own bookkeeping fields come on top)."""

    number: str
    title: str
    status: str
    priority: str
    team: str
    assignee: str
    opened_at: datetime
    last_activity_at: datetime
    customer: Party
    tags: list[str]
    summary: str
    sections: list[Section]
    line_items: list[LineItem]
    comments: list[Comment]


class BenchCase(CaseFields, Resource):
    resource_type = "BenchCase"
    max_versions = MAX_VERSIONS


class SstCase(CaseFields, DynamoDbVersionedResource):
    resource_config = ResourceConfig(compress_data=True, max_versions=MAX_VERSIONS)


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(WORDS, weights=_WEIGHTS, k=n))


def _sentence(rng: random.Random) -> str:
    text = _words(rng, rng.randint(6, 22))
    if rng.random() < 0.3:
        text += f" (ref {rng.choice('ABCDEFGHJK')}{rng.randrange(10**5, 10**6)})"
    return text[0].upper() + text[1:] + rng.choice([".", ".", ".", "?", "!"])


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 6)))


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_{uuid.UUID(int=rng.getrandbits(128)).hex[:20]}"


def _comment(rng: random.Random, at: datetime, sentences: int = 3) -> Comment:
    return Comment(
        id=_id(rng, "cmt"),
        author=_person(rng),
        posted_at=at,
        visibility=rng.choice(["internal", "customer"]),
        text=" ".join(_sentence(rng) for _ in range(rng.randint(1, sentences))),
    )


def make_case(rng: random.Random, number: int, target: int) -> dict[str, Any]:
    """A case document whose JSON is just over ``target`` bytes."""
    opened = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc) + timedelta(hours=number)
    at = opened
    name = _person(rng)
    case = CaseFields(
        number=f"CASE-2025-{number:06d}",
        title=_sentence(rng)[:80],
        status="new",
        priority=rng.choice(PRIORITIES),
        team=rng.choice(TEAMS),
        assignee=_person(rng),
        opened_at=opened,
        last_activity_at=opened,
        customer=Party(
            id=_id(rng, "cus"),
            name=name,
            email=name.lower().replace(" ", ".") + "@example.org",
            phone=f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
            address=Address(
                line1=f"{rng.randint(1, 250)} rue de la République",
                line2=f"Bâtiment {rng.choice('ABC')}, étage {rng.randint(1, 9)}",
                city=rng.choice(CITIES),
                postcode=f"{rng.randint(10000, 99999)}",
                country="FR",
            ),
        ),
        tags=rng.sample(["warranty", "vip", "repeat", "damage", "refund", "field", "b2b"], 3),
        summary=_paragraph(rng),
        sections=[],
        line_items=[],
        comments=[],
    )
    step = 0
    while len(case.model_dump_json()) < target:
        at += timedelta(minutes=rng.randint(3, 600))
        kind = step % 4
        if kind == 0:
            case.sections.append(
                Section(
                    heading=_sentence(rng)[:60],
                    paragraphs=[_paragraph(rng) for _ in range(rng.randint(1, 3))],
                    edited_at=at,
                    edited_by=_person(rng),
                )
            )
        elif kind == 1:
            case.line_items.append(
                LineItem(
                    sku=f"SKU-{rng.randrange(10**6):06d}-{rng.choice('ABCDEFGH')}",
                    description=_words(rng, rng.randint(3, 8)),
                    quantity=rng.randint(1, 12),
                    unit_price=Decimal(rng.randrange(199, 99999)) / 100,
                    tax_rate=Decimal(rng.choice(["0.20", "0.055", "0.10"])),
                )
            )
        else:
            case.comments.append(_comment(rng, at))
        step += 1
    case.last_activity_at = at
    return case.model_dump(mode="json")


def make_edits(rng: random.Random, doc: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` successive states, each a small edit of the one before."""
    states = []
    case = CaseFields.model_validate(doc)
    for i in range(n):
        case = case.model_copy(deep=True)
        case.last_activity_at += timedelta(minutes=rng.randint(1, 300))
        kind = i % 3
        if kind == 0:
            case.comments.append(_comment(rng, case.last_activity_at, sentences=2))
        elif kind == 1:
            which = rng.choice(["status", "priority", "assignee"])
            if which == "status":
                case.status = rng.choice([s for s in STATUSES if s != case.status])
            elif which == "priority":
                case.priority = rng.choice([p for p in PRIORITIES if p != case.priority])
            else:
                case.assignee = _person(rng)
        elif case.line_items:
            k = rng.randrange(len(case.line_items))
            case.line_items[k].quantity = rng.randint(1, 12)
        else:
            case.tags = [*case.tags[1:], rng.choice(["callback", "sla", "audit"])]
        states.append(case.model_dump(mode="json"))
    return states


# -- DynamoDB's size and capacity rules on the wire format --------------------------------------


def number_size(text: str) -> int:
    if text.lstrip("-").isdigit():
        return sizes.number_size(int(text))  # the rule measured against DynamoDB Local
    mantissa = text.lstrip("+-").lower().split("e")[0].replace(".", "")
    digits = mantissa.strip("0") or "0"
    return 1 + (len(digits) + 1) // 2


def value_size(av: dict[str, Any]) -> int:
    ((kind, value),) = av.items()
    if kind == "S":
        return len(value.encode("utf-8"))
    if kind == "N":
        return number_size(value)
    if kind == "B":
        return len(base64.b64decode(value))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode("utf-8")) for v in value)
    if kind == "NS":
        return sum(number_size(v) for v in value)
    if kind == "BS":
        return sum(len(base64.b64decode(v)) for v in value)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in value)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in value.items())
    raise ValueError(f"unknown attribute type {kind}")


def wire_item_size(item: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for an item in wire format (``{"name": {"S": "..."}}``)."""
    return sum(len(name.encode("utf-8")) + value_size(av) for name, av in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int) -> int:
    return max(1, math.ceil(size / 4096))


# -- capturing requests ------------------------------------------------------------------------


@dataclass
class Call:
    operation: str
    body: bytes
    status: int = 0
    response: bytes = b""


class Recorder:
    """Captures every request sent by the clients it is attached to, with its response."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send.dynamodb.*", self._send)
        client.meta.events.register("response-received.dynamodb.*", self._received)

    def _send(self, request: Any, event_name: str, **_: Any) -> None:
        # Returning anything but None from before-send would replace the HTTP response.
        body = request.body
        if hasattr(body, "read"):
            raise RuntimeError("streamed request body: cannot capture it")
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.calls.append(Call(event_name.rsplit(".", 1)[1], bytes(body or b"")))

    def _received(self, response_dict: Any, **_: Any) -> None:
        if response_dict is not None and self.calls:
            self.calls[-1].status = int(response_dict["status_code"])
            self.calls[-1].response = bytes(response_dict["body"] or b"")

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls


@dataclass
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str
    include: tuple[str, ...]


@dataclass
class Costs:
    """Figures of one operation kind (library x document size x operation)."""

    ops: int = 0
    seconds: float = 0.0
    requests: int = 0
    by_operation: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wcu: list[int] = field(default_factory=list)  # per operation
    gsi_wcu: list[int] = field(default_factory=list)
    rcu: list[float] = field(default_factory=list)
    wcu_by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, other: Costs) -> None:
        self.ops += other.ops
        self.seconds += other.seconds
        self.requests += other.requests
        for k, v in other.by_operation.items():
            self.by_operation[k] += v
        self.wcu += other.wcu
        self.gsi_wcu += other.gsi_wcu
        self.rcu += other.rcu
        for k, v in other.wcu_by_kind.items():
            self.wcu_by_kind[k] += v


Key = tuple[str, str, str]  # table, pk, sk


class Ledger:
    """Turns captured requests into capacity units, keeping a shadow copy of every table."""

    def __init__(self, clean_client: Any, kinds: Callable[[str, str], str]) -> None:
        self.client = clean_client  # not hooked: its requests are not counted
        self.items: dict[Key, dict[str, Any]] = {}
        self.indexes: dict[str, list[Index]] = {}
        self.kind_of = kinds

    def learn_table(self, table: str) -> None:
        desc = self.client.describe_table(TableName=table)["Table"]
        indexes = []
        for gsi in desc.get("GlobalSecondaryIndexes", []):
            projection = gsi["Projection"]
            indexes.append(
                Index(
                    gsi["IndexName"],
                    tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                    projection["ProjectionType"],
                    tuple(projection.get("NonKeyAttributes", [])),
                )
            )
        self.indexes[table] = indexes

    def _size(self, key: Key) -> int:
        item = self.items.get(key)
        return 0 if item is None else wire_item_size(item)

    def _entry(self, index: Index, item: dict[str, Any] | None) -> dict[str, Any] | None:
        if item is None or not all(k in item for k in index.keys):
            return None
        if index.projection == "ALL":
            return dict(item)
        names = {"pk", "sk", *index.keys}
        if index.projection == "INCLUDE":
            names |= set(index.include)
        return {n: v for n, v in item.items() if n in names}

    def _index_units(
        self, table: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> int:
        units = 0
        for index in self.indexes.get(table, []):
            before, after = self._entry(index, old), self._entry(index, new)
            if before == after:
                continue
            if before is not None and after is not None:
                if any(before[k] != after[k] for k in index.keys):
                    units += write_units(wire_item_size(before)) + write_units(
                        wire_item_size(after)
                    )
                else:
                    units += write_units(wire_item_size(after))
            else:
                units += write_units(wire_item_size(before or after or {}))
        return units

    def settle(self, calls: list[Call], costs: Costs | None) -> None:
        """Apply ``calls`` (in order) to the shadow; add their cost to ``costs`` if given."""
        wcu = gsi = 0
        rcu = 0.0
        for call in calls:
            if costs is not None:
                costs.requests += 1
                costs.by_operation[call.operation] += 1
            body = json.loads(call.body or b"{}")
            ok = call.status == 200
            response = json.loads(call.response) if ok and call.response else {}
            writes: list[tuple[str, str, dict[str, Any], bool]] = []
            op = call.operation
            if op in ("PutItem", "UpdateItem", "DeleteItem"):
                writes.append((op[:-4], body["TableName"], body, False))
            elif op == "BatchWriteItem":
                unprocessed = response.get("UnprocessedItems") or {}
                if unprocessed:
                    raise RuntimeError("BatchWriteItem left items unprocessed; rerun")
                for table, requests in body["RequestItems"].items():
                    for r in requests:
                        if "PutRequest" in r:
                            writes.append(("Put", table, r["PutRequest"], False))
                        else:
                            writes.append(("Delete", table, r["DeleteRequest"], False))
            elif op == "TransactWriteItems":
                for action in body["TransactItems"]:
                    ((kind, params),) = action.items()
                    writes.append((kind, params["TableName"], params, True))
            elif op in ("GetItem", "BatchGetItem", "Query", "Scan") and ok:
                rcu += self._read_units(op, body, response)
            if not ok:
                if writes and costs is not None:
                    raise RuntimeError(f"{op} failed with HTTP {call.status}: {call.response!r}")
                continue
            for kind, table, params, transactional in writes:
                source = params["Item"] if kind == "Put" else params["Key"]
                key = (table, source["pk"]["S"], source["sk"]["S"])
                old = self.items.get(key)
                if kind == "Put":
                    new: dict[str, Any] | None = params["Item"]
                elif kind == "Update":
                    got = self.client.get_item(
                        TableName=table,
                        Key={"pk": {"S": key[1]}, "sk": {"S": key[2]}},
                        ConsistentRead=True,
                    )
                    new = _wire(got.get("Item"))
                elif kind == "Delete":
                    new = None
                else:  # ConditionCheck: billed like a write of the item, changes nothing
                    new = old
                size = max(self._size(key), wire_item_size(new) if new else 0)
                units = write_units(size) * (2 if transactional else 1)
                wcu += units
                gsi += self._index_units(table, old, new)
                if costs is not None:
                    costs.wcu_by_kind[f"{kind.lower()} {self.kind_of(key[1], key[2])}"] += units
                if new is None:
                    self.items.pop(key, None)
                else:
                    self.items[key] = new
        if costs is not None:
            costs.wcu.append(wcu)
            costs.gsi_wcu.append(gsi)
            costs.rcu.append(rcu)

    def _read_units(self, op: str, body: dict[str, Any], response: dict[str, Any]) -> float:
        # Read units follow the full size of each item read, whatever a projection returns.
        if op == "GetItem":
            key = (body["TableName"], body["Key"]["pk"]["S"], body["Key"]["sk"]["S"])
            factor = 1.0 if body.get("ConsistentRead") else 0.5
            return read_units(self._size(key)) * factor
        if op == "BatchGetItem":
            total = 0.0
            for table, request in body["RequestItems"].items():
                factor = 1.0 if request.get("ConsistentRead") else 0.5
                for item in response.get("Responses", {}).get(table, []):
                    key = (table, item["pk"]["S"], item["sk"]["S"])
                    total += read_units(self._size(key)) * factor
                missing = len(request["Keys"]) - len(response.get("Responses", {}).get(table, []))
                total += missing * factor
            return total
        factor = 1.0 if body.get("ConsistentRead") else 0.5
        table = body["TableName"]
        size = sum(
            self._size((table, item["pk"]["S"], item["sk"]["S"]))
            for item in response.get("Items", [])
        )
        return read_units(size) * factor


def _wire(item: Any) -> dict[str, Any] | None:
    """A boto3 low-level item (``bytes`` for B) back to the JSON wire format (base64 for B)."""
    if item is None:
        return None

    def conv(av: dict[str, Any]) -> dict[str, Any]:
        ((kind, value),) = av.items()
        if kind == "B":
            return {"B": base64.b64encode(bytes(value)).decode()}
        if kind == "BS":
            return {"BS": [base64.b64encode(bytes(v)).decode() for v in value]}
        if kind == "L":
            return {"L": [conv(v) for v in value]}
        if kind == "M":
            return {"M": {k: conv(v) for k, v in value.items()}}
        return {kind: value}

    return {name: conv(av) for name, av in item.items()}


def item_kind(pk: str, sk: str) -> str:
    if pk.startswith("_feed#"):
        return "feed counter" if sk == "counter" else "feed entry"
    if sk == "h":
        return "head"
    parsed = parse_sk(sk)
    if parsed is not None:
        return "keyframe" if parsed[1] else "version"
    if sk == "v0":
        return "latest copy (v0)"
    if sk.startswith("v") and sk[1:].isdigit():
        return "version"
    return "other"


def scan_all(client: Any, table: str) -> Iterator[dict[str, Any]]:
    start: dict[str, Any] | None = None
    while True:
        params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        if start:
            params["ExclusiveStartKey"] = start
        page = client.scan(**params)
        for item in page.get("Items", []):
            wire = _wire(item)
            assert wire is not None
            yield wire
        start = page.get("LastEvaluatedKey")
        if not start:
            return


# -- the two libraries behind one small interface ----------------------------------------------


class Ours:
    name = "eventstore"

    def __init__(self, endpoint: str, recorder: Recorder, table: str) -> None:
        self.table = table
        self.store: EventStore = eventstore.open(
            f"dynamodb://{table}?region={REGION}&endpoint_url={endpoint}"
        )
        self.store.create_table()
        recorder.attach(self.store.backend.client)  # type: ignore[attr-defined]
        self.ids: dict[int, str] = {}
        self.versions: dict[int, int] = {}

    def requests(self) -> int:
        return self.store.backend.requests()

    def create(self, s: int, doc: dict[str, Any]) -> None:
        v = self.store.append(BenchCase.model_validate(doc))
        self.ids[s], self.versions[s] = v.resource_id, v.version

    def update(self, s: int, doc: dict[str, Any]) -> None:
        v = self.store.append(
            BenchCase.model_validate(doc),
            resource_id=self.ids[s],
            expected_version=self.versions[s],
        )
        self.versions[s] = v.version

    def read(self, s: int, version: int | None) -> dict[str, Any]:
        v = self.store.read_version(BenchCase, self.ids[s], version)
        return v.state.model_dump(mode="json")

    def pk(self, s: int) -> str:
        return f"BenchCase#{self.ids[s]}"


class OursNoFeed(Ours):
    """eventstore on a table created without a change feed (``feed_partitions=0``)."""

    name = "eventstore (no feed)"

    def __init__(self, endpoint: str, recorder: Recorder, table: str) -> None:
        self.table = table
        self.store = eventstore.open(f"dynamodb://{table}?region={REGION}&endpoint_url={endpoint}")
        self.store.create_table(feed_partitions=0)
        recorder.attach(self.store.backend.client)  # type: ignore[attr-defined]
        self.ids = {}
        self.versions = {}


class OursCold(Ours):
    """eventstore as a writer that never read the stream before (a Lambda that handles many
    documents, a new process): each update comes with an empty keyframe cache."""

    name = "eventstore (cold writer)"

    def update(self, s: int, doc: dict[str, Any]) -> None:
        self.store.reader.cache = KeyframeCache(32 * 1024 * 1024)
        v = self.store.append(
            BenchCase.model_validate(doc),
            resource_id=self.ids[s],
            expected_version=self.versions[s],
        )
        self.versions[s] = v.version


class Theirs:
    name = "simplesingletable"

    def __init__(self, endpoint: str, recorder: Recorder, table: str) -> None:
        self.table = table
        self.memory = DynamoDbMemory(
            logger=logging.getLogger("simplesingletable.bench"),
            table_name=table,
            endpoint_url=endpoint,
            connection_params={"region_name": REGION},
            track_stats=False,
        )
        self.memory.dynamodb_table  # noqa: B018 - builds the boto3 resource the helper needs
        create_standard_dynamodb_table(table, self.memory._dynamodb_resource)
        # Its writes go through a low-level client, its reads through a boto3 resource's client.
        recorder.attach(self.memory.dynamodb_client)
        recorder.attach(self.memory.dynamodb_table.meta.client)
        self.current: dict[int, SstCase] = {}

    def create(self, s: int, doc: dict[str, Any]) -> None:
        self.current[s] = self.memory.create_new(SstCase, doc)

    def update(self, s: int, doc: dict[str, Any]) -> None:
        self.current[s] = self.memory.update_existing(self.current[s], doc)

    def read(self, s: int, version: int | None) -> dict[str, Any]:
        found = self.memory.read_existing(
            self.current[s].resource_id, SstCase, version=version or 0, consistent_read=True
        )
        return CaseFields.model_validate(found.model_dump()).model_dump(mode="json")

    def pk(self, s: int) -> str:
        return f"SstCase#{self.current[s].resource_id}"


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Docs:
    initial: dict[str, Any]
    states: list[dict[str, Any]]  # version 2 .. UPDATES+1


def run(args: argparse.Namespace) -> dict[str, Any]:
    endpoint = args.endpoint_url
    rng = random.Random(args.seed)
    workload: dict[str, list[Docs]] = {}
    number = 0
    for label, target in SIZES.items():
        workload[label] = []
        for _ in range(args.streams):
            number += 1
            doc = make_case(rng, number, target)
            workload[label].append(Docs(doc, make_edits(rng, doc, UPDATES)))
    documents = {}
    for label, docs in workload.items():
        raw = [json.dumps(d.initial, separators=(",", ":")).encode() for d in docs]
        documents[label] = {
            "json": sum(map(len, raw)) / len(raw),
            "json_last": sum(len(json.dumps(d.states[-1], separators=(",", ":"))) for d in docs)
            / len(docs),
            "gzip": sum(len(gzip.compress(r)) for r in raw) / len(raw),
            # What a keyframe holds: the codec's own encoding, less its one codec byte.
            "zstd": sum(len(codec.encode(r)) - 1 for r in raw) / len(raw),
        }

    clean = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    recorder = Recorder()
    ledger = Ledger(clean, item_kind)
    run_id = uuid.uuid4().hex[:8]
    libs: list[Any] = [
        Ours(endpoint, recorder, f"bench-eventstore-{run_id}"),
        Theirs(endpoint, recorder, f"bench-sst-{run_id}"),
        OursCold(endpoint, recorder, f"bench-cold-{run_id}"),
        OursNoFeed(endpoint, recorder, f"bench-nofeed-{run_id}"),
    ]
    recorder.take()  # table creation is not part of the figures
    for lib in libs:
        ledger.learn_table(lib.table)

    results: dict[tuple[str, str, str], Costs] = defaultdict(Costs)

    def measure(lib: Any, label: str | None, op: str, action: Callable[[], Any]) -> Any:
        before = lib.requests() if isinstance(lib, Ours) else None
        t0 = time.perf_counter()
        out = action()
        elapsed = time.perf_counter() - t0
        calls = recorder.take()
        if before is not None and lib.requests() - before != len(calls):
            raise RuntimeError("request hook and store.backend.requests() disagree")
        costs = Costs(ops=1, seconds=elapsed) if label is not None else None
        ledger.settle(calls, costs)
        if costs is not None and label is not None:
            results[(label, op, lib.name)].add(costs)
        return out

    # Warm-up (not measured): the JVM behind DynamoDB Local and both clients' connections.
    warm_rng = random.Random(args.seed + 1)
    warm = make_case(warm_rng, 0, 2048)
    warm_states = make_edits(warm_rng, warm, 12)
    for lib in libs:
        for _ in range(2):
            s = -1 - len(getattr(lib, "ids", getattr(lib, "current", {})))
            measure(lib, None, "", lambda lib=lib, s=s: lib.create(s, warm))
            for state in warm_states:
                measure(lib, None, "", lambda lib=lib, s=s, st=state: lib.update(s, st))
            measure(lib, None, "", lambda lib=lib, s=s: lib.read(s, None))
            measure(lib, None, "", lambda lib=lib, s=s: lib.read(s, 10))

    streams: dict[str, dict[str, str]] = defaultdict(dict)  # pk -> (library, size)
    s = 0
    for label, docs in workload.items():
        for d in docs:
            s += 1
            # Alternate which library goes first so neither always runs on a warmer server.
            order = libs if s % 2 else libs[::-1]
            for lib in order:
                measure(lib, label, "create", lambda lib=lib, s=s, d=d: lib.create(s, d.initial))
                for state in d.states:
                    measure(lib, label, "update", lambda lib=lib, s=s, st=state: lib.update(s, st))
                for _ in range(args.reads):
                    got = measure(lib, label, "read latest", lambda lib=lib, s=s: lib.read(s, None))
                    if got != d.states[-1]:
                        raise RuntimeError(f"{lib.name}: read latest returned the wrong state")
                    for number in OLD_VERSIONS:
                        old = measure(
                            lib,
                            label,
                            READ_BY_NUMBER,
                            lambda lib=lib, s=s, n=number: lib.read(s, n),
                        )
                        if old != d.states[number - 2]:
                            raise RuntimeError(
                                f"{lib.name}: read v{number} returned the wrong state"
                            )
                streams[lib.pk(s)] = {"library": lib.name, "size": label}

    # What stays stored: a raw scan of each table (not counted), sized by DynamoDB's rule.
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    for lib in libs:
        for item in scan_all(clean, lib.table):
            where = streams.get(item["pk"]["S"])
            if where is None:
                continue  # warm-up streams
            entry = stored.setdefault(
                (where["size"], lib.name),
                {"items": 0, "bytes": 0, "by_kind": defaultdict(lambda: [0, 0])},
            )
            size = wire_item_size(item)
            entry["items"] += 1
            entry["bytes"] += size
            kind = entry["by_kind"][item_kind(item["pk"]["S"], item["sk"]["S"])]
            kind[0] += 1
            kind[1] += size
    # Cross-check the wire sizes of our items against eventstore.backends.sizes.item_size.
    ours = libs[0]
    start = None
    ours_total = 0
    while True:
        page = ours.store.backend.scan(start=start)
        ours_total += sum(item_size(i) for i in page.items if str(i["pk"]) in streams)
        if page.last_key is None:
            break
        start = page.last_key
    recorder.take()
    wire_total = sum(v["bytes"] for (_, name), v in stored.items() if name == "eventstore")
    if ours_total != wire_total:
        raise RuntimeError(f"size rule mismatch: {ours_total} != {wire_total}")

    for lib in libs:
        clean.delete_table(TableName=lib.table)
    ours.store.close()

    return {
        "documents": documents,
        "streams": args.streams,
        "reads": args.reads,
        "results": results,
        "stored": stored,
    }


# -- output ------------------------------------------------------------------------------------


def _avg(xs: list[float] | list[int]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _fmt(x: float) -> str:
    return f"{x:.0f}" if x == int(x) else f"{x:.1f}"


LIBRARIES = (
    "eventstore",
    "eventstore (cold writer)",
    "eventstore (no feed)",
    "simplesingletable",
)


def markdown(figures: dict[str, Any]) -> str:
    results: dict[tuple[str, str, str], Costs] = figures["results"]
    out = []
    out.append("Documents (mean over streams; gzip and zstd sizes of the created version):\n")
    out.append(
        f"| document | JSON bytes (v1) | gzip (simplesingletable) | zstd (eventstore keyframe) | JSON bytes (v{UPDATES + 1}) |"
    )
    out.append("|---|---:|---:|---:|---:|")
    for label, d in figures["documents"].items():
        out.append(
            f"| {label} | {d['json']:.0f} | {d['gzip']:.0f} | {d['zstd']:.0f} | {d['json_last']:.0f} |"
        )
    out.append("")
    out.append(
        "Per operation (mean per call; WCU = table write units, max = most expensive single call; "
        "RCU strongly consistent unless the library reads eventually consistent; ops/s on DynamoDB Local):\n"
    )
    out.append(
        "| document | operation | library | requests | WCU | WCU max | GSI WCU | RCU | ops/s (DynamoDB Local) |"
    )
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for label in SIZES:
        for op in ("create", "update", "read latest", READ_BY_NUMBER):
            for lib in LIBRARIES:
                c = results.get((label, op, lib))
                if c is None:
                    continue
                req = c.requests / c.ops
                out.append(
                    f"| {label} | {op} | {lib} | {_fmt(round(req, 1))} | {_avg(c.wcu):.1f} | "
                    f"{max(c.wcu)} | {_avg(c.gsi_wcu):.1f} | {_avg(c.rcu):.1f} | {c.ops / c.seconds:.0f} |"
                )
    out.append("")
    out.append("Write units of an update by item (mean per update):\n")
    out.append("| document | library | write units by item |")
    out.append("|---|---|---|")
    for label in SIZES:
        for lib in LIBRARIES:
            c = results[(label, "update", lib)]
            parts = ", ".join(
                f"{k} {v / c.ops:.1f}"
                for k, v in sorted(c.wcu_by_kind.items(), key=lambda kv: -kv[1])
            )
            ops = ", ".join(f"{k} {v / c.ops:.2f}" for k, v in sorted(c.by_operation.items()))
            out.append(f"| {label} | {lib} | {parts} (requests: {ops}) |")
    out.append("")
    out.append(
        f"Stored after the run ({MAX_VERSIONS} versions retained per stream; bytes by DynamoDB's "
        "item size rule, per stream):\n"
    )
    out.append(
        "| document | library | items | bytes | bytes per item | by item (count x mean bytes) |"
    )
    out.append("|---|---|---:|---:|---:|---|")
    n = figures["streams"]
    for label in SIZES:
        for lib in LIBRARIES:
            e = figures["stored"].get((label, lib))
            if e is None:
                continue
            parts = ", ".join(
                f"{k} {cnt / n:.0f} x {b / cnt:.0f}" for k, (cnt, b) in sorted(e["by_kind"].items())
            )
            out.append(
                f"| {label} | {lib} | {e['items'] / n:.0f} | {e['bytes'] / n:.0f} | "
                f"{e['bytes'] / e['items']:.0f} | {parts} |"
            )
    out.append("")
    out.append("Targets (issue 3), updates:\n")
    out.append(
        "| document | requests per update (target 1) | WCU per update, eventstore / simplesingletable "
        "| ratio | same update costs more with eventstore | target |"
    )
    out.append("|---|---:|---:|---:|---:|---|")
    for label in SIZES:
        ours = results[(label, "update", "eventstore")]
        theirs = results[(label, "update", "simplesingletable")]
        a, b = _avg(ours.wcu), _avg(theirs.wcu)
        # The n-th update of the same document, side by side (both lists are in run order).
        worse = sum(1 for x, y in zip(ours.wcu, theirs.wcu, strict=True) if x > y)
        limit = 0.5 if label != "2 KB" else 1.0
        ok = ours.requests == ours.ops and a <= limit * b and worse == 0
        out.append(
            f"| {label} | {ours.requests / ours.ops:.0f} | {a:.1f} / {b:.1f} | {a / b:.2f} | "
            f"{worse} of {ours.ops} | {'<=' if limit == 1 else '<= 0.5 x'} simplesingletable: "
            f"{'met' if ok else 'MISSED'} |"
        )
    out.append("")
    out.append("The change feed (issue 11), updates: write units with the feed and without it:\n")
    out.append("| document | WCU with feed / without | difference (target <= +4 at 2 KB) |")
    out.append("|---|---:|---:|")
    for label in SIZES:
        with_feed = _avg(results[(label, "update", "eventstore")].wcu)
        without = _avg(results[(label, "update", "eventstore (no feed)")].wcu)
        diff = round(with_feed - without, 6)
        verdict = ("met" if diff <= 4 else "MISSED") if label == "2 KB" else ""
        out.append(f"| {label} | {with_feed:.1f} / {without:.1f} | +{diff:.1f} {verdict} |")
    out.append("")
    out.append("Cold writers (issue 9: a writer without the keyframe cached), updates:\n")
    out.append(
        "| document | WCU warm / cold | ratio (target <= 1.5) | requests cold | RCU cold "
        "| stored bytes per version warm / cold |"
    )
    out.append("|---|---:|---:|---:|---:|---:|")
    for label in SIZES:
        warm = results[(label, "update", "eventstore")]
        cold = results[(label, "update", "eventstore (cold writer)")]
        a, b = _avg(warm.wcu), _avg(cold.wcu)
        per_version = []
        for lib in ("eventstore", "eventstore (cold writer)"):
            e = figures["stored"][(label, lib)]["by_kind"].get("version", [1, 0])
            per_version.append(e[1] / e[0])
        out.append(
            f"| {label} | {a:.1f} / {b:.1f} | {b / a:.2f} ({'met' if b <= 1.5 * a else 'MISSED'}) | "
            f"{cold.requests / cold.ops:.1f} | {_avg(cold.rcu):.1f} | "
            f"{per_version[0]:.0f} / {per_version[1]:.0f} |"
        )
    out.append("")
    out.append(
        f"Reads by number, every retained version but the latest ({READ_BY_NUMBER[5:]}); "
        "issue 14: no more read units than simplesingletable:\n"
    )
    out.append(
        "| document | RCU mean eventstore / simplesingletable | RCU max | requests | target |"
    )
    out.append("|---|---:|---:|---:|---|")
    for label in SIZES:
        ours = results[(label, READ_BY_NUMBER, "eventstore")]
        theirs = results[(label, READ_BY_NUMBER, "simplesingletable")]
        a, b = _avg(ours.rcu), _avg(theirs.rcu)
        out.append(
            f"| {label} | {a:.2f} / {b:.2f} | {max(ours.rcu):.0f} / {max(theirs.rcu):.0f} | "
            f"{ours.requests / ours.ops:.0f} | {'met' if a <= b else 'MISSED'} |"
        )
    return "\n".join(out)


def require_local_dynamodb(endpoint_url: str | None) -> str:
    """The DynamoDB Local endpoint to use; exits without one, so that a benchmark never runs
    against a real AWS account by accident. Gives boto3 the dummy credentials DynamoDB Local
    accepts."""
    if not endpoint_url:
        sys.exit(f"no DynamoDB Local endpoint: set {ENDPOINT_VAR} or pass --endpoint-url")
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(name, value)
    return endpoint_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", default=os.environ.get(ENDPOINT_VAR))
    parser.add_argument("--streams", type=int, default=3, help="documents of each size")
    parser.add_argument("--reads", type=int, default=10, help="reads of each kind per document")
    parser.add_argument("--seed", type=int, default=20250301)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.endpoint_url = require_local_dynamodb(args.endpoint_url)
    figures = run(args)
    if args.json:
        results = {
            " / ".join(k): {
                "ops": c.ops,
                "requests_per_op": c.requests / c.ops,
                "requests_by_operation": dict(c.by_operation),
                "wcu_mean": _avg(c.wcu),
                "wcu_max": max(c.wcu),
                "gsi_wcu_mean": _avg(c.gsi_wcu),
                "rcu_mean": _avg(c.rcu),
                "wcu_by_item": {k: v / c.ops for k, v in c.wcu_by_kind.items()},
                "ops_per_s_dynamodb_local": c.ops / c.seconds,
            }
            for k, c in figures["results"].items()
        }
        stored = {
            " / ".join(k): {"items": v["items"], "bytes": v["bytes"], "by_item": dict(v["by_kind"])}
            for k, v in figures["stored"].items()
        }
        print(
            json.dumps(
                {"documents": figures["documents"], "results": results, "stored": stored}, indent=2
            )
        )
        return
    print(
        f"eventstore vs simplesingletable {dist_version('simplesingletable')} on DynamoDB Local, "
        f"{args.streams} documents per size, {UPDATES} updates each, max_versions={MAX_VERSIONS}, "
        f"{args.reads} reads of each kind per document; Python {platform.python_version()}, "
        f"boto3 {dist_version('boto3')}\n"
    )
    print(markdown(figures))


if __name__ == "__main__":
    main()
