"""``eventstore demo [--db FILE] [--dynamodb ENDPOINT]``."""

from __future__ import annotations

import argparse

from eventstore.errors import EventStoreError


def demo_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="eventstore demo",
        description="A guided tour: a small shop on an embedded SQLite file.",
    )
    parser.add_argument(
        "--db", default="eventstore-demo.db", help="SQLite file to use (default: %(default)s)"
    )
    parser.add_argument(
        "--dynamodb",
        metavar="ENDPOINT",
        help="also run the last part on DynamoDB at this endpoint, e.g. http://127.0.0.1:8000 "
        "(start one with: .venv/bin/eventstore local)",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    from eventstore_demo.tour import run

    try:
        run(args.db, dynamodb=args.dynamodb)
    except EventStoreError as e:
        print(f"eventstore demo: {type(e).__name__}: {e}")
        return 1
    return 0
