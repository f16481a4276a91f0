"""The command line a person works with: show, history, export and import between backends
(states byte-identical, numbers and ids kept), create-table's DynamoDB options, usage errors
exiting 2, and ``eventstore local``."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

import eventstore
from eventstore import NO_STREAM, EventStore, Resource, TableOptions
from eventstore.cli import main
from eventstore.console import ProgressLine
from eventstore.local import free_port
from eventstore.transfer import import_file, parse_line
from tests.conftest import DYNAMODB_ENDPOINT, drop, dynamodb_url, new_table_name
from tests.models import Note, Order

ROOT = Path(__file__).resolve().parent.parent


class Kept(Resource):
    """A type with max_age: its superseded versions carry an expiry."""

    resource_type = "CliKept"
    max_age = timedelta(days=30)
    value: float


def _fill(store: EventStore) -> dict[str, int]:
    """Streams with trimming, deletes and restarts, odd values; returns id -> last version."""
    last: dict[str, int] = {}
    ada = store.append(Order(customer="ada ✓", total_cents=1), event="opened", metadata={"n": 1})
    for i in range(2, 30):  # past a keyframe group
        store.append(
            Order(customer="ada ✓", total_cents=i, status="paid" if i % 2 else "new"),
            resource_id=ada.resource_id,
            expected_version=i - 1,
            event=f"e{i}",
            metadata={"float": 0.1 * i, "nested": {"state": [i, None]}},
        )
    last[ada.resource_id] = 29
    store.append(Note(text="x" * 3000), resource_id="note-1")
    for i in range(2, 13):  # max_versions = 5: versions 8..12 remain
        store.append(Note(text="x" * 3000 + str(i)), resource_id="note-1", expected_version=i - 1)
    last["note-1"] = 12
    store.append(Order(customer="gone"), resource_id="gone")
    store.delete(Order, "gone")
    store.append(Order(customer="back"), resource_id="gone", expected_version=NO_STREAM)
    last["gone"] = 3
    store.append(Order(customer="deleted"), resource_id="deleted")
    store.delete(Order, "deleted")
    last["deleted"] = 2
    for i in range(3):
        store.append(
            Kept(value=1e-7 * (i + 1)), resource_id="kept", expected_version=i or NO_STREAM
        )
    last["kept"] = 3
    return last


def _stored(store: EventStore) -> list[tuple[Any, ...]]:
    """Every retained version as stored: type, id, number, id, schema, event, metadata text,
    deleted, expiry and the exact state bytes."""
    from eventstore.transfer import stream_heads

    found = []
    for head in stream_heads(store):
        for one in store.reader.stored_states(str(head["pk"])):
            s = one.stored
            fields = (s.pk, s.number, s.version_id, s.schema, s.event, s.metadata, s.deleted)
            found.append((*fields, s.expires, one.state, head.get("gsi0sk")))
    return sorted(found)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[str, EventStore]]:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    store = eventstore.open(url)
    store.create_table(feed="inline")
    yield url, store
    store.close()


def test_show_and_history(
    sqlite_store: tuple[str, EventStore], capsys: pytest.CaptureFixture[str]
) -> None:
    url, store = sqlite_store
    _fill(store)
    ada = next(iter(store.list_resources(Order, newest_first=False))).resource_id
    assert main(["show", url, "Order", ada]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["event"], shown["state"]["total_cents"]) == (29, "e29", 29)
    assert shown["metadata"]["nested"] == {"state": [29, None]}
    assert main(["show", url, "Order", ada, "--version", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["state"]["customer"] == "ada ✓"
    assert main(["history", url, "Order", ada]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["version", "recorded at", "event", "metadata"]
    assert [line.split("\t")[0] for line in lines[1:]] == [str(n) for n in range(1, 30)]
    assert lines[1].split("\t")[2:] == ["opened", '{"n": 1}']
    assert main(["history", url, "Order", "deleted"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split("\t")[2] == "deleted (deleted)"
    # Trimmed, missing and malformed: typed messages, exit 1 for what is not there, 2 for usage.
    assert main(["show", url, "Note", "note-1", "--version", "2"]) == 1
    assert "VersionNotFound" in capsys.readouterr().err
    assert main(["show", url, "Order", "nobody"]) == 1
    assert "StreamNotFound" in capsys.readouterr().err
    assert main(["show", url, "Not a type", "x"]) == 2
    assert "InvalidKey" in capsys.readouterr().err
    assert main(["show", url, "Order", ada, "--version", "0"]) == 2
    assert main(["show", "nosuch://x", "Order", ada]) == 2
    assert main(["show", url]) == 2  # argparse: missing arguments
    capsys.readouterr()


def _round_trip(source: EventStore, target_url: str, tmp_path: Path) -> EventStore:
    out = tmp_path / f"export-{time.monotonic_ns()}.jsonl"
    with out.open("w") as f:
        from eventstore.transfer import export

        report = export(source, f)
    assert report.versions == len(_stored(source))
    target = eventstore.open(target_url)
    target.create_table(feed="inline")
    imported = import_file(target, out, [Order, Note, Kept])
    assert imported.versions == report.versions and imported.present == 0
    return target


def test_export_import_is_byte_identical_between_backends(
    sqlite_store: tuple[str, EventStore], tmp_path: Path
) -> None:
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    _, source = sqlite_store
    last = _fill(source)
    dynamodb = _round_trip(source, dynamodb_url(new_table_name()), tmp_path)
    try:
        assert _stored(dynamodb) == _stored(source)
        back = _round_trip(dynamodb, f"sqlite:///{tmp_path / 'back.db'}", tmp_path)
        assert _stored(back) == _stored(source)
        for store in (dynamodb, back):
            # The store works on: reads, listings in creation order, appends after the import.
            for rid, version in last.items():
                cls = Kept if rid == "kept" else Note if rid == "note-1" else Order
                if rid == "deleted":
                    assert [v.deleted for v in store.read_stream(cls, rid)] == [False, True]
                    continue
                assert store.read_version(cls, rid).version == version
            listed = [v.resource_id for v in store.list_resources(Order, newest_first=False)]
            assert listed == [
                v.resource_id for v in source.list_resources(Order, newest_first=False)
            ]
            nxt = store.append(Note(text="after"), resource_id="note-1", expected_version=12)
            assert nxt.version == 13
            assert [v.version for v in store.read_stream(Note, "note-1")] == [9, 10, 11, 12, 13]
            # Imported versions got feed positions on the target; version 8 was trimmed by 13.
            assert [v.version for v in store.feed() if v.resource_id == "note-1"] == [
                9,
                10,
                11,
                12,
                13,
            ]
        back.close()
    finally:
        drop(dynamodb)


def test_import_feeds_positions_and_reruns_skip_what_is_there(
    sqlite_store: tuple[str, EventStore], tmp_path: Path
) -> None:
    _, source = sqlite_store
    _fill(source)
    path = tmp_path / "all.jsonl"
    with path.open("w") as f:
        from eventstore.transfer import export

        export(source, f)
    lines = path.read_text().splitlines()
    target = eventstore.open(f"sqlite:///{tmp_path / 'target.db'}")
    target.create_table(feed="inline")
    # An interrupted import: the first half of the file went in.
    half = tmp_path / "half.jsonl"
    half.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    first = import_file(target, half, [Order, Note, Kept])
    again = import_file(target, path, [Order, Note, Kept])
    assert first.versions + again.versions == len(lines)
    assert again.present == first.versions
    assert _stored(target) == _stored(source)
    # Every imported version has a feed position, gapless, once each.
    positions = [v.position for v in target.feed()]
    assert positions == list(range(1, len(lines) + 1))
    # A third run writes nothing.
    assert import_file(target, path, [Order, Note, Kept]).versions == 0
    target.close()


def test_import_refuses_a_bad_file_before_writing(
    sqlite_store: tuple[str, EventStore], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, source = sqlite_store
    _fill(source)
    path = tmp_path / "all.jsonl"
    assert main(["export", url, "--output", str(path)]) == 0
    progress = capsys.readouterr().err.splitlines()
    # Not a terminal: the first progress line at once, then the summary on its own line.
    assert re.fullmatch(r"  \d+ streams, \d+ versions, [\d.]+ s", progress[0]), progress
    assert progress[-1].startswith("exported ") and len(progress) <= 3, progress
    lines = path.read_text().splitlines()
    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    assert main(["create-table", target_url]) == 0
    broken = {
        "not json": [*lines[:-1], lines[-1][:-5]],
        "missing class": lines,
        "out of order": [lines[1], lines[0], *lines[2:]],
        "state not valid": [line.replace('"customer"', '"kustomer"', 1) for line in lines],
        "not an export": ['{"type": "Order"}'],
    }
    for name, content in broken.items():
        bad = tmp_path / f"{name}.jsonl"
        bad.write_text("\n".join(content) + "\n")
        types = (
            ["tests.models:Order"]
            if name == "missing class"
            else [
                "tests.models:Order",
                "tests.models:Note",
                "tests.test_cli:Kept",
            ]
        )
        assert main(["import", target_url, str(bad), *types]) == 2, name
        err = capsys.readouterr().err
        assert "InvalidInput" in err and "line " in err, (name, err)
    assert main(["import", target_url, str(tmp_path / "missing.jsonl"), "tests.models:Order"]) == 2
    assert main(["import", target_url, str(path), "tests.models:Nope"]) == 2
    capsys.readouterr()
    with eventstore.open(target_url) as target:
        assert _stored(target) == []  # nothing was written by any refused import
    assert (
        main(
            [
                "import",
                target_url,
                str(path),
                "tests.models:Order",
                "tests.models:Note",
                "tests.test_cli:Kept",
            ]
        )
        == 0
    )
    assert "imported" in capsys.readouterr().out
    with eventstore.open(target_url) as target:
        assert _stored(target) == _stored(source)
    # A different stream already under the same id: refused, typed.
    other = tmp_path / "other.db"
    with eventstore.open(f"sqlite:///{other}") as clash:
        clash.create_table(feed="inline")
        clash.append(Order(customer="someone else"), resource_id="gone")
    assert (
        main(
            [
                "import",
                f"sqlite:///{other}",
                str(path),
                "tests.models:Order",
                "tests.models:Note",
                "tests.test_cli:Kept",
            ]
        )
        == 1
    )
    assert "ConcurrencyError" in capsys.readouterr().err


def test_export_lines_keep_the_state_bytes(sqlite_store: tuple[str, EventStore]) -> None:
    _, store = sqlite_store
    store.append(Kept(value=1e-7), resource_id="k")
    from eventstore.transfer import version_line

    (found,) = store.reader.stored_states("CliKept#k")
    line = version_line(found, None)
    assert line.startswith('{"state":{"value":1e-7}')  # pydantic's float text, not Python's
    assert parse_line(line, 1).state == found.state == b'{"value":1e-7}'


def test_export_by_type(
    sqlite_store: tuple[str, EventStore], capsys: pytest.CaptureFixture[str]
) -> None:
    url, store = sqlite_store
    _fill(store)
    assert main(["export", url, "--type", "Note"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["version"] for line in out] == [8, 9, 10, 11, 12]
    assert main(["export", url, "--type", "no such"]) == 2


def test_create_table_options_on_dynamodb_local(capsys: pytest.CaptureFixture[str]) -> None:
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    table = new_table_name()
    url = dynamodb_url(table)
    args = ["create-table", url, "--billing", "PROVISIONED", "--read-capacity", "3"]
    args += ["--write-capacity", "4", "--stream", "NEW_IMAGE", "--deletion-protection"]
    args += ["--tag", "team=payments", "--kms-key", "alias/eventstore"]
    sent: list[tuple[str, dict[str, Any]]] = []
    client = boto3.client("dynamodb", endpoint_url=DYNAMODB_ENDPOINT, region_name="us-east-1")
    try:
        assert main(args) == 0, capsys.readouterr().err
        described = client.describe_table(TableName=table)["Table"]
        assert described["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
        assert described["ProvisionedThroughput"]["WriteCapacityUnits"] == 4
        assert all(
            i["ProvisionedThroughput"]["WriteCapacityUnits"] == 4
            for i in described["GlobalSecondaryIndexes"]
        )
        assert described["StreamSpecification"] == {
            "StreamEnabled": True,
            "StreamViewType": "NEW_IMAGE",
        }
        assert described["DeletionProtectionEnabled"] is True
        # DynamoDB Local keeps no tags and no key; what was sent is what a real table gets.
        other = new_table_name()
        store2 = eventstore.open(dynamodb_url(other))
        store2.backend.client.meta.events.register(  # type: ignore[attr-defined]
            "provide-client-params.dynamodb.*",
            lambda params, model, **_: sent.append((model.name, dict(params))),
        )
        with pytest.raises(eventstore.BackendError, match="UpdateContinuousBackups"):
            # DynamoDB Local has no point-in-time recovery: the request is sent and refused.
            store2.create_table(
                options=TableOptions(
                    point_in_time_recovery=True, tags={"team": "payments"}, kms_key="alias/k"
                )
            )
        created = dict(sent)["CreateTable"]
        assert created["Tags"] == [{"Key": "team", "Value": "payments"}]
        assert created["SSESpecification"] == {
            "Enabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": "alias/k",
        }
        assert dict(sent)["UpdateContinuousBackups"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }
        drop(store2)
    finally:
        client.update_table(TableName=table, DeletionProtectionEnabled=False)
        client.delete_table(TableName=table)
    # Bad options are usage errors.
    assert main(["create-table", url, "--billing", "PROVISIONED"]) == 2
    assert "read_capacity" in capsys.readouterr().err
    assert main(["create-table", url, "--tag", "novalue"]) == 2
    assert main(["create-table", url, "--billing", "free"]) == 2


def test_embedded_backends_refuse_table_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["create-table", url, "--pitr"]) == 2
    assert "DynamoDB" in capsys.readouterr().err
    with eventstore.open("memory://") as store:
        with pytest.raises(eventstore.InvalidInput):
            store.create_table(options=TableOptions(stream="NEW_IMAGE"))
        with pytest.raises(eventstore.WrongType):
            store.create_table(options={"stream": "NEW_IMAGE"})  # type: ignore[arg-type]
        store.create_table(options=TableOptions())  # the defaults are fine anywhere
    for bad in (
        {"billing": "FREE"},
        {"read_capacity": 5},
        {"billing": "PROVISIONED", "read_capacity": 0, "write_capacity": 1},
        {"tags": {"": "x"}},
        {"stream": "ALL"},
        {"kms_key": ""},
    ):
        with pytest.raises(eventstore.InvalidInput):
            TableOptions(**bad)


def test_local_command_runs_dynamodb_local_until_ctrl_c(tmp_path: Path) -> None:
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not installed here (scripts/test installs it)")
    port = free_port()
    env = {
        **os.environ,
        "EVENTSTORE_DYNAMODB_LOCAL_DIR": str(ROOT / ".dynamodb-local"),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventstore",
            "local",
            "--port",
            str(port),
            "--data",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first, first + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        )
        printed = [proc.stdout.readline() for _ in range(6)]
        assert any("AWS_ACCESS_KEY_ID=test" in line for line in printed)
        url = f"dynamodb://local-t?region=us-east-1&endpoint_url=http://127.0.0.1:{port}"
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        with eventstore.open(url) as store:
            store.create_table(feed="inline")
            assert store.append(Order(customer="ada")).version == 1
        # The same port again: refused with a clear message.
        busy = subprocess.run(
            [sys.executable, "-m", "eventstore", "local", "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert busy.returncode == 1 and "in use" in busy.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert (tmp_path / "data" / "shared-local-instance.db").exists()  # --data keeps tables
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_export_with_trimming_appends_between_its_requests(tmp_path: Path) -> None:
    """Another writer trims the stream between any two requests of an export: the export never
    fails, and every line it writes is a version as it was stored, in order, none twice."""
    from eventstore.transfer import export
    from tests.interleaving import Interleaving

    texts = {n: f"text {n} " + "y" * 2000 for n in range(1, 40)}
    fired: list[bool] = []
    for after in range(1, 16):
        with eventstore.open(f"sqlite:///{tmp_path / f'{after}.db'}") as store:
            store.create_table(feed="inline")
            for n in range(1, 11):
                store.append(
                    Note(text=texts[n]), resource_id="n", expected_version=n - 1 or NO_STREAM
                )

            def trim(store: EventStore = store) -> None:
                for n in range(11, 20):  # max_versions = 5: everything exported so far goes
                    store.append(Note(text=texts[n]), resource_id="n", expected_version=n - 1)

            wrapped = EventStore(Interleaving(store.backend, after=after, action=trim))
            out = tmp_path / f"{after}.jsonl"
            with out.open("w") as f:
                report = export(wrapped, f)
            exported = [parse_line(line, i) for i, line in enumerate(out.read_text().splitlines())]
            numbers = [one.number for one in exported]
            assert numbers == sorted(set(numbers)), (after, numbers)
            for one in exported:
                assert json.loads(one.state)["text"] == texts[one.number]
            assert report.versions == len(exported)
            assert len(exported) + report.skipped_trimmed >= 5
            fired.append(getattr(wrapped.backend, "fired", False))
    assert fired[:3] == [True] * 3  # the writer did run inside the export


def test_import_refuses_a_stream_another_writer_starts_meanwhile(
    sqlite_store: tuple[str, EventStore], tmp_path: Path
) -> None:
    """Between the import's read of a stream's head and its write, another writer creates the
    stream: the import stops with ConcurrencyError and the other writer's version stands."""
    from eventstore.transfer import export
    from tests.interleaving import Interleaving

    _, source = sqlite_store
    source.append(Order(customer="ada"), resource_id="o-1")
    path = tmp_path / "one.jsonl"
    with path.open("w") as f:
        export(source, f)
    with eventstore.open(f"sqlite:///{tmp_path / 'target.db'}") as target:
        target.create_table(feed="inline")

        def other_writer() -> None:
            target.append(Order(customer="someone else"), resource_id="o-1")

        wrapped = EventStore(Interleaving(target.backend, after=1, action=other_writer))
        with pytest.raises(eventstore.ConcurrencyError) as raised:
            import_file(wrapped, path, [Order])
        assert raised.value.actual == 1
        assert target.read_version(Order, "o-1").state.customer == "someone else"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_lines_in_a_log_come_every_few_seconds() -> None:
    log = io.StringIO()
    line = ProgressLine(log, every=3600.0)
    line.show("1 stream")  # the first is shown at once
    line.show("2 streams")  # too soon: skipped
    line.show("3 streams", final=True)  # the last always shows
    line.end()  # nothing drawn in place: nothing to finish
    assert log.getvalue() == "1 stream\n3 streams\n"
    every = io.StringIO()
    each = ProgressLine(every, every=0.0)
    for n in range(3):
        each.show(f"{n}")
    assert every.getvalue() == "0\n1\n2\n"


def test_progress_line_on_a_terminal_is_redrawn_in_place() -> None:
    screen = _Terminal()
    line = ProgressLine(screen, every=3600.0)
    line.show("12,000 versions")
    time.sleep(0.11)  # a terminal is redrawn at most ten times a second
    line.show("9 versions")  # shorter: padded over the longer one
    line.end()
    line.end()  # once
    assert screen.getvalue() == "\r12,000 versions\r9 versions     \n"
    final = _Terminal()
    bar = ProgressLine(final)
    bar.show("done", final=True)
    bar.end()
    assert final.getvalue() == "\rdone\n"


# -- edges: missing databases, closed pipes, output files, options checked first ---------------


def test_reading_commands_refuse_a_missing_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    for command in (
        ["check", url, "tests.models:Order"],
        ["feed", url],
        ["show", url, "Order", "x"],
        ["history", url, "Order", "x"],
        ["export", url],
    ):
        assert main(command) == 2, command
        assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "typo.db").exists()


def test_a_closed_pipe_ends_quietly(sqlite_url: str) -> None:
    store = eventstore.open(sqlite_url)
    store.create_table(feed="inline")
    for n in range(3000):
        store.append(Order(customer=str(n)))
    store.close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for command in ("feed", "export"):
        done = subprocess.run(
            f"{sys.executable} -m eventstore {command} {sqlite_url} | head -1",
            shell=True,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.stdout.count("\n") == 1
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_export_output_files(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from eventstore.cli import _export_to_file

    store = eventstore.open(sqlite_url)
    store.create_table(feed="inline")
    for n in range(5):
        store.append(Order(customer=str(n)))
    assert main(["export", sqlite_url, "-o", str(tmp_path / "nodir" / "x.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", sqlite_url, "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    target = tmp_path / "out.jsonl"

    def interrupted(report: Any) -> None:
        if report.versions:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _export_to_file(store, str(target), None, interrupted, False)
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert main(["export", sqlite_url, "-o", str(target)]) == 0
    assert len(target.read_text().splitlines()) == 5


def test_create_table_checks_its_options_before_creating(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    url = dynamodb_url(new_table_name())
    for bad in (
        ["--feed-partitions", "-1"],
        ["--feed-partitions", "100"],
        ["--feed", "none", "--feed-partitions", "2"],
    ):
        assert main(["create-table", url, *bad]) == 2, bad
        capsys.readouterr()
    store = eventstore.open(url)
    with pytest.raises(eventstore.TableNotFound):
        store.append(Order(customer="x"))
    store.close()
