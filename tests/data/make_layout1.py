"""Writes layout1.db and layout1_feed.json: a SQLite file in storage layout 1 (the feed kept in
counter and entry items), made by eventstore at commit 650950f, for tests/test_sqlite_layout.py.

Run it with that commit checked out in OLD (``git worktree add OLD 650950f``)::

    python tests/data/make_layout1.py OLD tests/data/layout1.db feed.json

then write feed.json one entry per line as tests/data/layout1_feed.json.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any


def main(old: str, path: str, feed_file: str) -> None:
    sys.path.insert(0, old)
    eventstore: Any = importlib.import_module("eventstore")
    assert eventstore.__file__.startswith(old), eventstore.__file__
    resource, no_stream = eventstore.Resource, eventstore.NO_STREAM

    class Ticket(resource):  # type: ignore[misc, valid-type]
        title: str
        n: int = 0

    class Kept(resource):  # type: ignore[misc, valid-type]
        max_versions = 3
        title: str
        n: int = 0

    store = eventstore.open(f"sqlite:///{path}")
    store.create_table(feed_partitions=2)
    for i in range(6):
        store.append(Ticket(title=f"t{i}"), resource_id=f"t{i}")
    for n in range(2, 21):
        for i in range(6):
            store.append(Ticket(title=f"t{i}", n=n), resource_id=f"t{i}", expected_version=n - 1)
    for n in range(1, 9):  # max_versions 3: versions 1 to 5 trimmed
        store.append(Kept(title="k", n=n), resource_id="k", expected_version=(n - 1) or no_stream)
    store.append(Ticket(title="secret"), resource_id="gone")
    store.append(Ticket(title="secret", n=2), resource_id="gone", expected_version=1)
    store.erase(Ticket, "gone")
    feeds = {
        partition: [
            [e.position, e.resource_type, e.resource_id, e.version, e.trimmed]
            for e in store.feed_entries(partition=partition)
        ]
        for partition in (0, 1)
    }
    store.close()
    Path(feed_file).write_text(json.dumps(feeds))


if __name__ == "__main__":
    main(*sys.argv[1:4])
