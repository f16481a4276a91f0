"""Command line: ``eventstore demo``, ``eventstore create-table URL``, ``eventstore feed URL``, and
subcommands of other packages (``eventstore rebuild ...``)."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
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
    from eventstore import __version__

    parser.add_argument("--version", action="version", version=f"eventstore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a guided scenario on an embedded SQLite file")
    demo.add_argument(
        "--db", default="eventstore-demo.db", help="SQLite file to use (default: %(default)s)"
    )
    create = commands.add_parser("create-table", help="create the table and its indexes")
    create.add_argument("url", help="store URL, e.g. dynamodb://my-table?region=eu-west-1")
    create.add_argument(
        "--feed-partitions",
        type=int,
        default=1,
        help="partitions of the change feed; 0 for a table without a feed (default: 1)",
    )
    check = commands.add_parser(
        "check",
        help="read every retained version of some types under the current code (before a deploy)",
    )
    check.add_argument("url", help="store URL")
    check.add_argument("types", nargs="+", help="resource classes, as module:Class")
    feed = commands.add_parser(
        "feed", help="print the change feed: position, type, id, version, event"
    )
    feed.add_argument("url", help="store URL")
    feed.add_argument("--after", type=int, default=0, help="start after this position")
    feed.add_argument("--partition", type=int, default=0, help="feed partition (default: 0)")
    feed.add_argument(
        "--follow", action="store_true", help="keep printing new commits, like tail -f"
    )
    feed.add_argument(
        "--interval", type=float, default=0.5, help="seconds between polls with --follow"
    )
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
                store.create_table(feed_partitions=parsed.feed_partitions)
            print(f"table ready: {parsed.url}")
        elif parsed.command == "feed":
            return _feed(parsed)
        elif parsed.command == "check":
            return _check(parsed)
    except EventStoreError as e:
        print(f"eventstore: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def _feed(parsed: argparse.Namespace) -> int:
    from eventstore.urls import open_store

    with open_store(parsed.url) as store:
        position = parsed.after
        try:
            while True:
                for entry in store.feed_entries(position, partition=parsed.partition):
                    what = "(trimmed)" if entry.trimmed else (entry.event or "-")
                    print(
                        f"{entry.position}\t{entry.resource_type}\t{entry.resource_id}\t"
                        f"{entry.version}\t{what}",
                        flush=True,
                    )
                    position = entry.position
                if not parsed.follow:
                    return 0
                time.sleep(parsed.interval)
        except KeyboardInterrupt:
            return 130


def _check(parsed: argparse.Namespace) -> int:
    from eventstore.checking import CheckReport, check
    from eventstore.resource import Resource, check_resource_class
    from eventstore.urls import open_store

    classes: list[type[Resource]] = []
    for spec in parsed.types:
        module_name, _, name = spec.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), name) if name else None
            classes.append(check_resource_class(found))  # type: ignore[arg-type]
        except (ImportError, AttributeError, TypeError):
            print(
                f"eventstore check: {spec!r} is not a Resource class (module:Class)",
                file=sys.stderr,
            )
            return 2

    def show(report: CheckReport) -> None:
        print(
            f"  {report.streams:,} streams, {report.read:,} versions read "
            f"({report.upcast:,} upcast), {len(report.failures):,} failures, "
            f"{report.seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    with open_store(parsed.url) as store:
        report = check(store, classes, progress=show)
    for failure in report.failures:
        print(
            f"FAIL {failure.resource_type} {failure.resource_id!r} version {failure.version}: "
            f"{failure.reason}"
        )
    print(
        f"{report.read:,} versions read fine ({report.upcast:,} needed upcasting), "
        f"{len(report.failures):,} failed, in {report.streams:,} streams"
    )
    return 0 if report.ok else 1
