"""DynamoDBBackend against DynamoDB Local over HTTP (no mocks).

Run with ``python scripts/dynamodb_local.py run -- pytest tests/test_dynamodb_backend.py``; without
``EVENTSTORE_DYNAMODB_ENDPOINT`` the module is skipped. Faults DynamoDB Local never produces
(throttling, 5xx, transaction conflicts, lost answers) are injected with botocore event hooks on the
backend's own client.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from eventstore.backends.base import (
    MAX_ITEM_SIZE,
    MAX_WRITE_ACTIONS,
    Condition,
    ConditionFailed,
    Delete,
    Item,
    Put,
    SortCondition,
    Update,
)
from eventstore.backends.dynamodb import DynamoDBBackend
from eventstore.backends.sizes import item_size
from eventstore.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    InvalidInput,
    ItemTooLarge,
    TableNotFound,
)

ENDPOINT = os.environ.get("EVENTSTORE_DYNAMODB_ENDPOINT")

pytestmark = [
    pytest.mark.dynamodb,
    pytest.mark.skipif(
        not ENDPOINT,
        reason="EVENTSTORE_DYNAMODB_ENDPOINT is not set; run under "
        "`python scripts/dynamodb_local.py run -- pytest ...`",
    ),
]


def _session() -> boto3.session.Session:
    # DynamoDB Local accepts any credentials, but boto3 insists on having some.
    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )


def _backend(table: str, **kwargs: Any) -> DynamoDBBackend:
    options: dict[str, Any] = {"base_delay": 0.001, "max_delay": 0.005, "max_attempts": 4}
    options.update(kwargs)
    return DynamoDBBackend(table, session=_session(), endpoint_url=ENDPOINT, **options)


@pytest.fixture
def db() -> Iterator[DynamoDBBackend]:
    backend = _backend(f"test-{uuid.uuid4().hex[:12]}")
    backend.create_table()
    try:
        yield backend
    finally:
        backend.delete_table()
        backend.close()


def counted(db: DynamoDBBackend, action: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``action``; return its result and the number of requests it sent."""
    before = db.requests()
    result = action()
    return result, db.requests() - before


def _token() -> str:
    # Tokens are remembered per account for 10 minutes, across tables: never reuse one.
    return uuid.uuid4().hex


def item(pk: str, sk: str, **attrs: Any) -> Item:
    return {"pk": pk, "sk": sk, **attrs}


def get1(db: DynamoDBBackend, pk: str, sk: str) -> Item | None:
    return db.get([(pk, sk)])[0]


# The behaviour of every call is checked on every backend in test_backend_contract.py; here, what
# only DynamoDB shows: requests per call, the server's size rule, tokens, retries and faults.


def test_each_call_is_one_request(db: DynamoDBBackend) -> None:
    db.write([Put(item("p", "head", v=3))])
    failing = [
        Put(item("p", "v4")),
        Update(("p", "head"), set={"v": 4}, condition=Condition(equals={"v": 2})),
    ]
    before = db.requests()
    with pytest.raises(ConditionFailed):
        db.write(failing)
    assert db.requests() - before == 1  # the current item comes back with the refusal itself
    _, sent = counted(
        db, lambda: db.write([Put(item("p", f"i{i:03}")) for i in range(MAX_WRITE_ACTIONS)])
    )
    assert sent == 1
    _, sent = counted(db, lambda: db.get([("p", "head"), ("p", "zz"), ("p", "i001")]))
    assert sent == 1
    for call in (
        lambda: db.query("p", sk=SortCondition("begins_with", "i0")),
        lambda: db.query("type", index="gsi1"),
        lambda: db.scan(segment=1, segments=2, limit=8),
    ):
        _, sent = counted(db, call)
        assert sent == 1


def test_invalid_batches_send_nothing(db: DynamoDBBackend) -> None:
    before = db.requests()
    for batch, token in (
        ([Put(item("p", f"i{i}")) for i in range(MAX_WRITE_ACTIONS + 1)], None),
        ([Put(item("p", "s")), Update(("p", "s"), set={"a": 1})], None),
        ([Put(item("p", "s")), Put(item("p", "t"))], "x" * 37),
        ([Put(item("p", "s", b=b"x" * MAX_ITEM_SIZE))], None),
    ):
        with pytest.raises((InvalidInput, ItemTooLarge)):
            db.write(batch, token=token)
    db.write([])
    assert db.requests() == before


def test_an_update_past_the_limit_is_refused_by_the_server_in_one_request(
    db: DynamoDBBackend,
) -> None:
    db.write([Put(item("p", "s", b=b"x" * (MAX_ITEM_SIZE - 100)))])
    # Only the server knows the item's current size.
    before = db.requests()
    with pytest.raises(ItemTooLarge):
        db.write([Update(("p", "s"), set={"c": b"y" * 200})])
    assert db.requests() - before == 1


def test_item_size_matches_the_server_limit_exactly(db: DynamoDBBackend) -> None:
    """Walk items across the limit: the server stores exactly what ``item_size`` allows."""
    raw = db.client
    shapes: list[Callable[[int], Item]] = [
        lambda n: item("p", "bin", b=b"\x01" * n),
        # Multi-byte names and strings, a number and a bool: every rule of item_size at once.
        lambda n: item("pé", "mixé", ñame="€" * 10, num=10**20 + 7, flag=True, s="a" * n),
    ]
    boundaries = []
    for shape in shapes:
        base = item_size(shape(0))
        for n in range(MAX_ITEM_SIZE - base - 3, MAX_ITEM_SIZE - base + 4):
            candidate = shape(n)
            size = item_size(candidate)
            try:
                raw.put_item(
                    TableName=db.table,
                    Item={k: _attr(v) for k, v in candidate.items()},
                )
                server_accepts = True
            except ClientError as e:
                assert "maximum allowed size" in e.response["Error"]["Message"]
                server_accepts = False
            assert server_accepts == (size <= MAX_ITEM_SIZE), size
            if server_accepts:
                boundaries.append(size)
            # The backend agrees: what it refuses the server would refuse, what it sends is stored.
            key = (str(candidate["pk"]), str(candidate["sk"]))
            db.write([Delete(key)])
            if size > MAX_ITEM_SIZE:
                with pytest.raises(ItemTooLarge):
                    db.write([Put(candidate)])
            else:
                db.write([Put(candidate), Put(item("p", "other"))])
                assert db.get([key]) == [candidate]
    assert max(boundaries) == MAX_ITEM_SIZE == 409_600


def server_number_size(value: int) -> int:
    """How DynamoDB (Local, measured) sizes a number: base-100 digit pairs aligned on the decimal
    point, trailing zero pairs dropped, one byte of exponent, one more byte when negative; zero is
    one byte. So 110 (01|10) takes 3 bytes but 1100 (11|00) takes 2."""
    if value == 0:
        return 1
    digits = str(abs(value))
    digits = "0" * (len(digits) % 2) + digits
    pairs = [digits[i : i + 2] for i in range(0, len(digits), 2)]
    while pairs[-1] == "00":
        pairs.pop()
    return 1 + len(pairs) + (value < 0)


@pytest.mark.parametrize(
    "number",
    [
        1,
        12,
        123,
        1234,
        100,
        1100,
        1230,
        10100,
        10**20 + 7,
        10**38 - 1,
        10**37,
        0,
        -1,
        -1234,
        -(10**38 - 1),
        110,
        11000,
    ],
)
def test_number_sizes_match_the_server(db: DynamoDBBackend, number: int) -> None:
    """An item holding ``number`` and filled exactly to the server's limit is stored; one byte
    more is refused. ``item_size`` must say the same."""
    filler = (
        MAX_ITEM_SIZE - item_size(item("p", "n", b=b"")) - len("x") - server_number_size(number)
    )
    fits = item("p", "n", x=number, b=b"\x01" * filler)
    over = item("p", "n", x=number, b=b"\x01" * (filler + 1))
    db.client.put_item(TableName=db.table, Item={k: _attr(v) for k, v in fits.items()})
    with pytest.raises(ClientError, match="maximum allowed size"):
        db.client.put_item(TableName=db.table, Item={k: _attr(v) for k, v in over.items()})
    assert (item_size(fits), item_size(over)) == (MAX_ITEM_SIZE, MAX_ITEM_SIZE + 1)


def _attr(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    return {"B": value}


# --- table management and errors ---


def test_create_table_is_idempotent(db: DynamoDBBackend) -> None:
    db.write([Put(item("p", "s"))])
    db.create_table()
    assert get1(db, "p", "s") == item("p", "s")
    table = db.client.describe_table(TableName=db.table)["Table"]
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert sorted(indexes) == ["gsi0", "gsi1", "gsi2", "gsi3", "gsi4"]
    assert indexes["gsi3"]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["v", "id"],
    }


def test_missing_table_is_table_not_found() -> None:
    backend = _backend("no-such-table-here")
    calls: list[Callable[[], Any]] = [
        lambda: backend.write([Put(item("p", "s"))]),
        lambda: backend.write([Put(item("p", "s")), Put(item("p", "t"))]),
        lambda: backend.get([("p", "s")]),
        lambda: backend.get([("p", "s"), ("p", "t")]),
        lambda: backend.query("p"),
        lambda: backend.scan(),
    ]
    for call in calls:
        before = backend.requests()
        with pytest.raises(TableNotFound) as missing:
            call()
        assert isinstance(missing.value, LookupError)
        assert isinstance(missing.value.__cause__, ClientError)
        assert backend.requests() - before == 1  # not retried
    backend.delete_table()  # deleting a missing table is fine
    backend.close()


def test_from_url() -> None:
    backend = DynamoDBBackend.from_url(
        f"dynamodb://My_Table.v-1?region=eu-west-1&endpoint_url={ENDPOINT}",
        session=_session(),
    )
    assert backend.table == "My_Table.v-1"
    assert backend.client.meta.region_name == "eu-west-1"
    assert backend.client.meta.endpoint_url == ENDPOINT
    backend.close()
    for bad in (
        "dynamodb://ab",
        "dynamodb://has space",
        "dynamodb://tab!e",
        f"dynamodb://{'x' * 256}",
        "sqlite://table",
        "dynamodb://table?colour=blue",
        "dynamodb://table?max_attempts=many",
    ):
        with pytest.raises(InvalidInput):
            DynamoDBBackend.from_url(bad, session=_session())


def test_idempotent_parameter_mismatch_is_backend_error(db: DynamoDBBackend) -> None:
    token = _token()
    db.write([Put(item("p", "a")), Put(item("p", "b"))], token=token)
    with pytest.raises(BackendError) as error:
        db.write([Put(item("p", "c")), Put(item("p", "d"))], token=token)
    assert not isinstance(error.value, (ConditionFailed, ConnectionError))
    assert db.get([("p", "c")]) == [None]


# --- retries, with faults injected on the backend's own client ---


def _fake_error(status: int, code: str, **extra: Any) -> AWSResponse:
    body = json.dumps(
        {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected", **extra}
    ).encode()

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    headers = {"x-amzn-requestid": "injected", "content-type": "application/x-amz-json-1.0"}
    return AWSResponse("http://injected", status, headers, Raw())


def _inject(
    db: DynamoDBBackend,
    operation: str,
    times: int,
    fault: Callable[[], Any],
    event: str = "before-send",
) -> list[int]:
    """Make the first ``times`` calls of ``operation`` fail with ``fault()``: an AWSResponse to
    return instead of sending, or an exception to raise. Returns a list counting the calls."""
    calls: list[int] = []

    def hook(**_: Any) -> Any:
        calls.append(1)
        if len(calls) > times:
            return None
        outcome = fault()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    db.client.meta.events.register(f"{event}.dynamodb.{operation}", hook)
    return calls


def test_throttling_and_server_errors_are_retried(db: DynamoDBBackend) -> None:
    faults: list[tuple[str, Callable[[], Any]]] = [
        ("PutItem", lambda: _fake_error(400, "ProvisionedThroughputExceededException")),
        ("GetItem", lambda: _fake_error(400, "ThrottlingException")),
        ("Query", lambda: _fake_error(400, "RequestLimitExceeded")),
        ("Scan", lambda: _fake_error(500, "InternalServerError")),
        ("BatchGetItem", lambda: _fake_error(503, "ServiceUnavailable")),
        ("PutItem", lambda: ReadTimeoutError(endpoint_url="http://injected")),
        ("GetItem", lambda: ConnectionClosedError(endpoint_url="http://injected")),
    ]
    calls_in = [
        lambda: db.write([Put(item("p", "s", n=1))]),
        lambda: db.get([("p", "s")]),
        lambda: db.query("p"),
        lambda: db.scan(),
        lambda: db.get([("p", "s"), ("p", "t")]),
        lambda: db.write([Put(item("p", "s", n=1))]),
        lambda: db.get([("p", "s")]),
    ]
    for (operation, fault), call in zip(faults, calls_in, strict=True):
        calls = _inject(db, operation, 2, fault)
        _, sent = counted(db, call)
        assert sent == 3, operation
        assert len(calls) == 3
        # The exhausted hook stays registered but lets later calls through.
    assert get1(db, "p", "s") == item("p", "s", n=1)


def test_transaction_conflict_is_retried(db: DynamoDBBackend) -> None:
    reasons = [{"Code": "None"}, {"Code": "TransactionConflict", "Message": "conflict"}]
    _inject(
        db,
        "TransactWriteItems",
        2,
        lambda: _fake_error(400, "TransactionCanceledException", CancellationReasons=reasons),
    )
    batch = [Put(item("p", "a"), Condition(exists=False)), Put(item("p", "b"))]
    _, sent = counted(db, lambda: db.write(batch))
    assert sent == 3
    assert db.get([("p", "a"), ("p", "b")]) == [item("p", "a"), item("p", "b")]


@pytest.mark.parametrize(
    ("fault", "error", "builtin"),
    [
        (lambda: _fake_error(400, "ThrottlingException"), BackendUnavailable, ConnectionError),
        (lambda: _fake_error(500, "InternalServerError"), BackendUnavailable, ConnectionError),
        (lambda: ConnectionClosedError(endpoint_url="x"), BackendUnavailable, ConnectionError),
        (lambda: ReadTimeoutError(endpoint_url="x"), BackendTimeout, TimeoutError),
    ],
)
def test_retries_run_out(
    db: DynamoDBBackend, fault: Callable[[], Any], error: type[Exception], builtin: type[Exception]
) -> None:
    for operation, call in (
        ("TransactWriteItems", lambda: db.write([Put(item("p", "a")), Put(item("p", "b"))])),
        ("Query", lambda: db.query("p")),
    ):
        _inject(db, operation, 1000, fault)
        before = db.requests()
        with pytest.raises(error) as failed:
            call()
        assert isinstance(failed.value, builtin)
        assert isinstance(failed.value, BackendError)
        assert failed.value.__cause__ is not None
        assert db.requests() - before == db.max_attempts == 4


def test_unreachable_endpoint_is_backend_unavailable() -> None:
    backend = DynamoDBBackend(
        "some-table",
        session=_session(),
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        max_attempts=2,
        base_delay=0.001,
    )
    with pytest.raises(BackendUnavailable):
        backend.get([("p", "s")])
    assert backend.requests() == 2


def test_lost_answer_of_a_transaction_is_not_applied_twice(db: DynamoDBBackend) -> None:
    """The first attempt is applied by the server but its answer is lost; the retry re-sends the
    same ClientRequestToken, so DynamoDB answers success without applying the batch again (it would
    fail: the Put requires that no item exists)."""
    tokens: list[str] = []
    db.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: tokens.append(params["ClientRequestToken"]),
    )
    calls = _inject(
        db,
        "TransactWriteItems",
        1,
        lambda: ReadTimeoutError(endpoint_url="http://injected"),
        event="after-call",
    )
    for token in (_token(), None):
        calls.clear()
        tokens.clear()
        pk = f"p-{token}"
        batch = [
            Put(item(pk, "v1", n=1), Condition(exists=False)),
            Update((pk, "head"), set={"v": 1}, condition=Condition(exists=False)),
        ]
        _, sent = counted(db, lambda b=batch, t=token: db.write(b, token=t))
        assert sent == 2
        assert len(calls) == 2
        assert len(tokens) == 2 and tokens[0] == tokens[1]
        if token:
            assert tokens[0] == token
        assert db.get([(pk, "v1"), (pk, "head")]) == [item(pk, "v1", n=1), item(pk, "head", v=1)]
    # A genuine conflict after the retry is still reported.
    with pytest.raises(ConditionFailed):
        db.write([Put(item("p-None", "v1"), Condition(exists=False)), Put(item("x", "y"))])


def test_lost_answer_of_a_single_write_is_success(db: DynamoDBBackend) -> None:
    """A single write cannot carry a token: when the retry's condition fails against exactly what
    the lost attempt wrote, the write succeeded."""
    _inject(db, "PutItem", 1, lambda: ReadTimeoutError(endpoint_url="x"), event="after-call")
    _, sent = counted(db, lambda: db.write([Put(item("p", "v1", n=1), Condition(exists=False))]))
    assert sent == 2
    _inject(db, "UpdateItem", 1, lambda: ReadTimeoutError(endpoint_url="x"), event="after-call")
    update = Update(("p", "v1"), set={"n": 2}, condition=Condition(equals={"n": 1}))
    _, sent = counted(db, lambda: db.write([update]))
    assert sent == 2
    assert get1(db, "p", "v1") == item("p", "v1", n=2)
    # Someone else's item under the key is a real conflict, not a lost answer of ours.
    db.write([Put(item("p", "v2", n=7))])
    _inject(db, "PutItem", 1, lambda: ReadTimeoutError(endpoint_url="x"), event="before-send")
    with pytest.raises(ConditionFailed) as failed:
        db.write([Put(item("p", "v2", n=1), Condition(exists=False))])
    assert failed.value.item == item("p", "v2", n=7)
