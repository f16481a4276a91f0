"""SIGKILL a process that appends to a SQLite store, many times, and audit the file after each kill.

Each child (``tests/crash_writer.py crash``) appends in a loop to untrimmed and trimmed streams and
prints every append only after ``append`` returned. The parent kills it with SIGKILL at a random
moment (sometimes while it is still starting), then opens the file and checks: every acknowledged
append is there under its version id and reads back; no stream has a gap; each head is at its
newest version (number and id) and its retention bound is its oldest version. At most one append
per child may be applied without having been acknowledged (the one the kill interrupted after its
commit). The next child continues from what is stored.

Run: ``.venv/bin/pytest tests/test_reliability_crash.py -q -s`` (``EVENTSTORE_LONG=1``: 300 kills).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore.keys import stream_pk
from tests.crash_writer import crash_stream_ids
from tests.faults import report, scaled
from tests.invariants import check_stream

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = scaled(25, 300)
SEED = int(os.environ.get("EVENTSTORE_CRASH_SEED", "4242"))

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


class Child:
    """A running crash writer whose stdout lines are collected by a thread."""

    def __init__(self, db: Path, run: int, seed: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), "crash", str(db), str(run), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[bytes] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith(b'{"ready"'):
                self.ready.set()

    def kill(self) -> tuple[list[dict[str, Any]], bytes]:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join()
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        records = []
        for line in self.lines:
            # A line cut by the kill was not fully reported: its append counts as unacknowledged.
            if line.endswith(b"\n"):
                record = json.loads(line)
                if "op" in record:
                    records.append(record)
        return records, err


def audit(
    db: Path,
    acked: dict[str, dict[int, tuple[str, str]]],
    unacked_ok: set[str],
    run: int,
) -> tuple[list[str], int, list[str]]:
    """Check the file after a kill; returns (problems, versions checked, ops applied unacked)."""
    problems: list[str] = []
    checked = 0
    extra: list[str] = []
    store = eventstore.open(f"sqlite:///{db}")
    try:
        for cls, rid in crash_stream_ids(run):
            pk = stream_pk(cls.resource_type, rid)
            mine = acked.get(pk, {})
            found = check_stream(store, cls, rid)
            if found is None:
                if mine:
                    problems.append(f"{pk}: stream lost, {len(mine)} versions acknowledged")
                continue
            problems += found.problems
            if found.head is None:
                continue
            numbers = found.numbers
            ids = {number: item["id"] for number, item in found.versions.items()}
            limit = cls.max_versions
            for number, (vid, _) in mine.items():
                if number < numbers[0] and limit is not None:
                    continue  # trimmed, as promised
                if ids.get(number) != vid:
                    problems.append(f"{pk}: acknowledged v{number} {vid} is {ids.get(number)}")
            # Every stored version decodes, and comes from an acknowledged append or from the one
            # each killed child may have committed without reporting.
            for version in store.read_stream(cls, rid):
                checked += 1
                op = str(getattr(version.state, "op", ""))
                known = mine.get(version.version)
                if known is not None:
                    if known[1] != op:
                        problems.append(f"{pk} v{version.version}: op {op}, acked {known[1]}")
                elif op not in unacked_ok:
                    extra.append(op)
                    if not op.startswith(f"{run}:"):
                        problems.append(f"{pk} v{version.version}: unacknowledged op {op}")
    finally:
        store.close()
    return problems, checked, extra


def test_sigkill_loses_no_acknowledged_append(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    db = tmp_path / "crash.db"
    acked: dict[str, dict[int, tuple[str, str]]] = {}
    unacked_ok: set[str] = set()
    problems: list[str] = []
    appends = checked = killed_starting = 0
    began = time.monotonic()
    for run in range(KILLS):
        child = Child(db, run, SEED * 1000 + run)
        if rng.random() < 0.15:
            # Kill while it starts or opens the file.
            time.sleep(rng.uniform(0.0, 0.4))
            killed_starting += not child.ready.is_set()
        else:
            assert child.ready.wait(30), "crash writer did not start"
            time.sleep(rng.uniform(0.0, 0.25))
        records, err = child.kill()
        if child.proc.returncode != -signal.SIGKILL:
            problems.append(f"run {run}: child exited {child.proc.returncode}: {err[-2000:]!r}")
        for r in records:
            pk = stream_pk(r["t"], r["id"])
            stream = acked.setdefault(pk, {})
            if r["v"] in stream:
                problems.append(f"run {run}: {pk} v{r['v']} acknowledged twice")
            stream[r["v"]] = (r["vid"], r["op"])
        appends += len(records)
        found, n, extra = audit(db, acked, unacked_ok, run)
        checked += n
        problems += [f"after kill {run}: {p}" for p in found]
        if len(extra) > 1:
            problems.append(f"after kill {run}: {len(extra)} unacknowledged appends {extra}")
        unacked_ok.update(extra)
        if problems:
            break
    report(
        "sqlite_sigkill",
        {
            "kills": KILLS,
            "killed_while_starting": killed_starting,
            "appends_acknowledged": appends,
            "applied_but_unacknowledged": len(unacked_ok),
            "versions_checked": checked,
            "versions_lost": sum("acknowledged" in p or "lost" in p for p in problems),
            "seconds": round(time.monotonic() - began, 1),
            "problems": len(problems),
        },
    )
    assert problems == []
    assert appends > KILLS  # the children did get work done between kills
