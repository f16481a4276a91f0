"""Command line: ``eventstore demo``, ``eventstore create-table URL``, ``eventstore rebuild ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from eventstore.errors import EventStoreError


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    plugins = {entry.name: entry for entry in entry_points(group="eventstore.commands")}
    if args and args[0] in plugins:
        # Subcommands registered by other packages (projections registers ``rebuild``) are
        # found by entry point, so eventstore never imports them.
        command: Callable[[list[str]], int] = plugins[args[0]].load()
        return command(args[1:])
    parser = argparse.ArgumentParser(
        prog="eventstore", description="Versioned resources on DynamoDB or SQLite."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a guided scenario on an embedded SQLite file")
    demo.add_argument(
        "--db", default="eventstore-demo.db", help="SQLite file to use (default: %(default)s)"
    )
    create = commands.add_parser("create-table", help="create the table and its indexes")
    create.add_argument("url", help="store URL, e.g. dynamodb://my-table?region=eu-west-1")
    for name in sorted(plugins):
        commands.add_parser(name, help=f"see {name} --help")
    parsed = parser.parse_args(args)
    try:
        if parsed.command == "demo":
            from eventstore.demo import run

            run(parsed.db)
        elif parsed.command == "create-table":
            from eventstore.urls import open_store

            with open_store(parsed.url) as store:
                store.create_table()
            print(f"table ready: {parsed.url}")
    except EventStoreError as e:
        print(f"eventstore: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0
