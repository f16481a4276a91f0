"""``eventstore demo`` (what ``scripts/demo`` runs) walks through the product and its numbers hold:
the conflict, trimming, a paged query, a rebuild, the feed, the stored items, and DynamoDB."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DYNAMODB_ENDPOINT


def demo(tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "eventstore", "demo", "--db", str(tmp_path / "demo.db"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_demo_walks_through_the_product(tmp_path: Path) -> None:
    out = demo(tmp_path)
    assert "ConcurrencyError(expected=3, actual=4)" in out
    assert "after 6 versions the cart holds versions [4, 5, 6]" in out
    assert "it holds versions 4-6" in out
    assert "all of them in 2 pages: ['bob', 'cy', 'eve', 'fay']" in out
    assert "bob's orders before the rebuild: 0; after: totals ['7.35']" in out
    assert "the rebuild scanned 7 order streams" in out and "updated 7" in out
    assert "21 positions in all; last_position() = 21." in out
    assert "saw 5 payments, 106.50 in all" in out and "2 new versions, 6 payments, 136.20" in out
    # Keyframes are told apart from versions by their keys ("#w"), and deltas are small.
    assert re.search(r"v#\d{10}#w\s+\d+ bytes  keyframe", out)
    deltas = [int(n) for n in re.findall(r"#v\s+(\d+) bytes  version: zstd delta", out)]
    assert len(deltas) == 4 and max(deltas) < 200
    assert "eventstore demo --dynamodb" in out  # how to see the DynamoDB part
    again = demo(tmp_path)  # a second run starts over on the same file: the same figures
    assert "21 positions in all; last_position() = 21." in again


def test_demo_on_dynamodb(tmp_path: Path) -> None:
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    out = demo(tmp_path, "--dynamodb", DYNAMODB_ENDPOINT)
    assert re.search(r"append of a \d+-byte order: 1 request, \d+ write units", out)
    assert "5 small edits: 5 requests" in out
    assert re.search(r"read of version 3: 1 request, 1 read unit ", out)
    assert re.search(r"query of the 'new' orders: 1 found, 2 requests", out)
