"""Command line: ``eventstore local``, ``create-table``, ``show``, ``history``,
``export``, ``import``, ``feed``, ``check``, and subcommands of other packages (``eventstore
rebuild ...``, ``eventstore demo``). Exit codes: 0 done, 1 failed, 2 bad usage (arguments, URL, input file), 130
interrupted."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from eventstore.console import NotFound, ProgressLine, duration, load_object
from eventstore.errors import EventStoreError, InvalidInput

if TYPE_CHECKING:
    from eventstore.resource import Resource
    from eventstore.store import EventStore


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    plugins = {entry.name: entry for entry in entry_points(group="eventstore.commands")}
    if args and args[0] == "local":
        from eventstore.local import main as local_main

        return local_main(args[1:])
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
    create = commands.add_parser("create-table", help="create the table and its indexes")
    create.add_argument("url", help="store URL, e.g. dynamodb://my-table?region=eu-west-1")
    create.add_argument(
        "--feed",
        choices=["indexed", "inline", "none"],
        help="how the change feed gives positions (default: indexed on DynamoDB, where an "
        "indexer reads the table's stream; inline on SQLite); an existing table keeps its own",
    )
    create.add_argument(
        "--feed-partitions",
        type=int,
        help="partitions of the change feed; 0 for a table without a feed (default: 1)",
    )
    dynamodb = create.add_argument_group("DynamoDB table options (applied when it is created)")
    dynamodb.add_argument(
        "--billing",
        choices=["PAY_PER_REQUEST", "PROVISIONED"],
        default="PAY_PER_REQUEST",
        help="on demand (default) or provisioned capacity",
    )
    dynamodb.add_argument("--read-capacity", type=int, help="RCU for the table and each index")
    dynamodb.add_argument("--write-capacity", type=int, help="WCU for the table and each index")
    dynamodb.add_argument(
        "--pitr", action="store_true", help="turn on point-in-time recovery (continuous backups)"
    )
    dynamodb.add_argument("--kms-key", help="encrypt with this customer-managed KMS key")
    dynamodb.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="tag the table (repeat)"
    )
    dynamodb.add_argument(
        "--stream",
        choices=["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"],
        help="turn on DynamoDB Streams with this view type",
    )
    dynamodb.add_argument(
        "--deletion-protection", action="store_true", help="refuse DeleteTable until turned off"
    )
    commands.add_parser("local", help="run DynamoDB Local for development (see local --help)")
    show = commands.add_parser("show", help="one version of a resource, as pretty JSON")
    show.add_argument("url", help="store URL")
    show.add_argument("type", help="resource type name, e.g. Order")
    show.add_argument("id", help="resource id")
    show.add_argument("--version", type=int, help="version number (default: the latest)")
    history = commands.add_parser(
        "history", help="every version of a resource: number, time, event, metadata"
    )
    history.add_argument("url", help="store URL")
    history.add_argument("type", help="resource type name, e.g. Order")
    history.add_argument("id", help="resource id")
    export = commands.add_parser(
        "export", help="every version as JSON lines (a backup, or a move to another backend)"
    )
    export.add_argument("url", help="store URL")
    export.add_argument(
        "--type", action="append", dest="types", metavar="TYPE", help="only this type (repeat)"
    )
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.add_argument(
        "--decrypt",
        action="store_true",
        help="write encrypted types in plaintext (by default they stay sealed with their "
        "subject's key, so shredding reaches the file too)",
    )
    load = commands.add_parser(
        "import", help="write the versions of an export into a store (numbers and ids kept)"
    )
    load.add_argument("url", help="store URL (create the table first)")
    load.add_argument("file", help="a file written by eventstore export")
    load.add_argument(
        "types", nargs="+", help="the resource classes of the file's types, as module:Class"
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
    index = commands.add_parser(
        "index",
        help="give an indexed feed's new versions their positions, from the table's stream",
    )
    index.add_argument("url", help="store URL (a DynamoDB table with an indexed feed)")
    index.add_argument(
        "--follow", action="store_true", help="keep indexing as commits arrive, until stopped"
    )
    index.add_argument(
        "--interval", type=float, default=1.0, help="seconds between polls with --follow"
    )
    index.add_argument(
        "--repair",
        action="store_true",
        help="then index the retained versions the index lacks (their stream records expired "
        "before anything indexed them); reads every head and the whole index",
    )
    upgrade = commands.add_parser(
        "upgrade",
        help="convert a SQLite file written by an older eventstore to the current layout",
    )
    upgrade.add_argument("url", help="sqlite:///path.db (converted in place, in one transaction)")
    blobs = commands.add_parser(
        "blobs", help="the blob store of large states: blobs gc URL --blobs S3URL"
    )
    blob_commands = blobs.add_subparsers(dest="blobs_command", required=True)
    gc = blob_commands.add_parser(
        "gc",
        help="delete objects no version names (left by commits that failed after uploading)",
    )
    gc.add_argument("url", help="store URL")
    gc.add_argument(
        "--older-than",
        type=float,
        default=60.0,
        metavar="MINUTES",
        help="only objects older than this (default 60; at least 15, longer than any commit)",
    )
    keys = commands.add_parser(
        "keys",
        help="data keys of encrypted types: keys rotate URL (provider from the environment)",
    )
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = key_commands.add_parser(
        "rotate",
        help="re-wrap every data key under EVENTSTORE_MASTER_KEY (the old ones given in "
        "EVENTSTORE_PREVIOUS_MASTER_KEYS) or EVENTSTORE_KMS_KEY_ID; states are not rewritten",
    )
    rotate.add_argument("url", help="store URL")
    for sub in (create, show, history, export, load, check, feed, gc, rotate):
        sub.add_argument(
            "--blobs",
            required=sub is gc,
            metavar="S3URL",
            help="the store's blob store of large states, s3://bucket/prefix?region=R",
        )
        sub.add_argument(
            "--key-store",
            metavar="URL",
            help="where the data keys of encrypted types are (default: beside the store); the "
            "key provider comes from EVENTSTORE_MASTER_KEY or EVENTSTORE_KMS_KEY_ID",
        )
    for name in sorted(plugins):
        commands.add_parser(name, help=f"see {name} --help")
    try:
        parsed = parser.parse_args(args)
    except SystemExit as e:  # --help, --version, or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else 2
    try:
        if parsed.command in (
            "feed",
            "show",
            "history",
            "export",
            "check",
            "index",
            "upgrade",
            "blobs",
        ):
            _must_exist(parsed.url)
        if parsed.command == "create-table":
            return _create_table(parsed)
        elif parsed.command == "feed":
            return _feed(parsed)
        elif parsed.command == "index":
            return _index(parsed)
        elif parsed.command == "check":
            return _check(parsed)
        elif parsed.command == "show":
            return _show(parsed)
        elif parsed.command == "history":
            return _history(parsed)
        elif parsed.command == "export":
            return _export(parsed)
        elif parsed.command == "import":
            return _import(parsed)
        elif parsed.command == "upgrade":
            return _upgrade(parsed)
        elif parsed.command == "blobs":
            return _collect_blobs(parsed)
        elif parsed.command == "keys":
            return _rotate_keys(parsed)
    except BrokenPipeError:
        # The reader went away (`eventstore feed URL | head -1`): stop quietly, as Unix tools do.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ValueError, TypeError) as e:
        # Bad input (InvalidInput, InvalidKey, WrongType and the like are ValueError/TypeError
        # too): a usage error.
        print(f"eventstore {parsed.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except EventStoreError as e:
        print(f"eventstore {parsed.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"eventstore {parsed.command}: interrupted", file=sys.stderr)
        return 130
    return 0


def _open(parsed: argparse.Namespace) -> EventStore:
    """The store a command names, with its blob store and key provider (from the environment)."""
    from eventstore.encryption import provider_from_env
    from eventstore.urls import open_store

    keys = provider_from_env()
    if keys is None and parsed.key_store:
        raise InvalidInput(
            "--key-store needs a key provider: set EVENTSTORE_MASTER_KEY or EVENTSTORE_KMS_KEY_ID"
        )
    return open_store(parsed.url, blobs=parsed.blobs, keys=keys, key_store=parsed.key_store)


def _rotate_keys(parsed: argparse.Namespace) -> int:
    from eventstore.encryption import Rotation

    line = ProgressLine(sys.stderr)

    def show(report: Rotation) -> None:
        line.show(f"  {report.subjects:,} subjects, {report.rewrapped:,} re-wrapped")

    with _open(parsed) as store, line:
        report = store.rotate_keys(progress=show)
    print(
        f"{report.rewrapped:,} data keys re-wrapped, {report.current:,} already current, "
        f"{report.gone:,} shredded meanwhile, in {duration(report.seconds)}"
    )
    return 0


def _collect_blobs(parsed: argparse.Namespace) -> int:
    from datetime import timedelta

    from eventstore.blobs import Sweep

    line = ProgressLine(sys.stderr)
    started = time.monotonic()

    found: list[Sweep] = []

    def show(sweep: Sweep) -> None:
        found.append(sweep)
        line.show(
            f"  {sweep.listed:,} objects listed, {sweep.deleted:,} deleted, "
            f"{duration(time.monotonic() - started)}"
        )

    with _open(parsed) as store, line:
        deleted = store.collect_blobs(timedelta(minutes=parsed.older_than), progress=show)
    sweep = found[-1] if found else Sweep()
    print(
        f"{deleted:,} objects deleted; {sweep.listed:,} listed, {sweep.young:,} younger than "
        f"{parsed.older_than:g} minutes kept"
        + (f", {sweep.unnamed:,} of streams with very long ids kept" if sweep.unnamed else "")
    )
    return 0


def _must_exist(url: str) -> None:
    """A reading command on a SQLite file that does not exist would create an empty database
    and report success (a pre-deploy check passing on a typo): refuse it."""
    import os

    from eventstore.urls import sqlite_path

    path = sqlite_path(url)
    if path and path != ":memory:" and not os.path.exists(path):
        raise InvalidInput(f"{url}: the database {path!r} does not exist")


def _upgrade(parsed: argparse.Namespace) -> int:
    from eventstore.sqlite_upgrade import UpgradeReport, upgrade
    from eventstore.urls import sqlite_path

    url: str = parsed.url
    path = sqlite_path(url)
    if not path or path == ":memory:":
        raise InvalidInput(f"{url}: only SQLite files have layouts to upgrade (sqlite:///path.db)")
    line = ProgressLine(sys.stderr)

    def show(report: UpgradeReport) -> None:
        line.show(f"  {report.positions:,} feed positions carried over, {duration(report.seconds)}")

    with line:
        report = upgrade(path, progress=show)
    if not report.changed:
        print(f"{path}: already in the current layout, nothing to do")
        return 0
    print(
        f"{path}: layout {report.found} -> current in {duration(report.seconds)}: "
        f"{report.moved:,} positions moved onto their versions, {report.erased:,} kept for "
        f"erased streams, {report.trimmed:,} of versions trimmed since"
    )
    return 0


def _create_table(parsed: argparse.Namespace) -> int:
    from eventstore.backends.base import TableOptions

    tags = {}
    for tag in parsed.tag:
        name, sep, value = tag.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--tag takes KEY=VALUE, got {tag!r}")
        tags[name] = value
    options = TableOptions(
        billing=parsed.billing,
        read_capacity=parsed.read_capacity,
        write_capacity=parsed.write_capacity,
        point_in_time_recovery=parsed.pitr,
        kms_key=parsed.kms_key,
        tags=tags,
        stream=parsed.stream,
        deletion_protection=parsed.deletion_protection,
    )
    with _open(parsed) as store:
        store.create_table(
            feed=parsed.feed,
            feed_partitions=parsed.feed_partitions,
            options=None if options.is_default else options,
        )
    print(f"table ready: {parsed.url}")
    return 0


def _stream_pk(parsed: argparse.Namespace) -> str:
    from eventstore.keys import check_resource_id, check_type_name, stream_pk

    return stream_pk(check_type_name(parsed.type), check_resource_id(parsed.id))


def _show(parsed: argparse.Namespace) -> int:
    from eventstore import records
    from eventstore.errors import StreamNotFound, VersionNotFound
    from eventstore.transfer import version_fields

    pk = _stream_pk(parsed)
    with _open(parsed) as store:
        number = parsed.version
        if number is None:
            head = store.backend.get([records.head_key(pk)])[0]
            if head is None:
                raise StreamNotFound(parsed.type, parsed.id)
            number = records.number(head, records.VERSION)
        elif number < 1:
            raise InvalidInput(f"--version must be >= 1, got {number}")
        found = next(iter(store.reader.stored_states(pk, number, number + 1)), None)
        if found is None:
            raise store.reader.missing(pk, number)
        if found.stored.number != number:
            raise VersionNotFound(parsed.type, parsed.id, number, None)
    shown = version_fields(found)
    shown["state"] = json.loads(found.state)
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


def _history(parsed: argparse.Namespace) -> int:
    from eventstore.transfer import version_fields

    with _open(parsed) as store:
        header = False
        for found in store.reader.stored_states(_stream_pk(parsed)):
            if not header:  # only once the stream is known to exist
                print("version\trecorded at\tevent\tmetadata")
                header = True
            fields = version_fields(found)
            event = fields["event"] or "-"
            if fields["deleted"]:
                event += " (deleted)"
            metadata = json.dumps(fields["metadata"], ensure_ascii=False)
            print(f"{fields['version']}\t{fields['recorded_at']}\t{event}\t{metadata}")
    return 0


def _export(parsed: argparse.Namespace) -> int:
    from eventstore.keys import check_type_name
    from eventstore.transfer import ExportReport, export

    types = None if parsed.types is None else {check_type_name(t) for t in parsed.types}

    line = ProgressLine(sys.stderr)

    def show(report: ExportReport) -> None:
        line.show(
            f"  {report.streams:,} streams, {report.versions:,} versions, "
            f"{duration(report.seconds)}"
        )

    with _open(parsed) as store, line:
        if parsed.output is None:
            report = export(store, sys.stdout, types=types, progress=show, decrypt=parsed.decrypt)
        else:
            report = _export_to_file(store, parsed.output, types, show, parsed.decrypt)
    skipped = f" ({report.skipped_trimmed:,} trimmed meanwhile)" if report.skipped_trimmed else ""
    print(
        f"exported {report.versions:,} versions of {report.streams:,} streams{skipped}",
        file=sys.stderr,
    )
    return 0


def _export_to_file(
    store: EventStore,
    path: str,
    types: set[str] | None,
    show: Callable[[Any], None],
    decrypt: bool,
) -> Any:
    """Export into a temporary file beside ``path``, renamed to it at the end: an interrupted
    export leaves no file that looks complete."""
    import os
    import tempfile

    from eventstore.transfer import export

    target = os.path.abspath(path)
    if os.path.isdir(target):
        raise InvalidInput(f"--output {path!r} is a directory; give a file name")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise InvalidInput(f"--output {path!r}: the folder {folder!r} does not exist")
    handle, partial = tempfile.mkstemp(prefix=".export-", suffix=".partial", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            report = export(store, out, types=types, progress=show, decrypt=decrypt)
        os.replace(partial, target)
    except BaseException:
        os.unlink(partial)
        raise
    return report


def _import(parsed: argparse.Namespace) -> int:
    from eventstore.transfer import ImportReport, import_file

    classes = [_resource_class(spec) for spec in parsed.types]

    line = ProgressLine(sys.stderr)

    def show(report: ImportReport) -> None:
        line.show(
            f"  {report.streams:,} streams, {report.versions:,} versions written, "
            f"{duration(report.seconds)}"
        )

    try:
        with _open(parsed) as store, line:
            report = import_file(store, parsed.file, classes, progress=show)
    except OSError as e:
        raise InvalidInput(f"cannot read {parsed.file!r}: {e.strerror or e}") from e
    print(
        f"imported {report.versions:,} versions of {report.streams:,} streams in "
        f"{report.commits:,} commits; {report.present:,} were there already, "
        f"{report.expired:,} left out as expired"
    )
    return 0


def _resource_class(spec: str) -> type[Resource]:
    from eventstore.resource import check_resource_class

    found = load_object(spec)
    try:
        return check_resource_class(found)
    except (TypeError, InvalidInput):
        raise NotFound(f"{spec!r} is not a Resource class") from None


def _feed(parsed: argparse.Namespace) -> int:

    with _open(parsed) as store:
        position = parsed.after
        try:
            while True:
                for entry in store.feed_entries(position, partition=parsed.partition):
                    if not entry.resource_id:
                        # An erased stream's position, or one trimmed since whose stream is not
                        # known any more (SQLite): the position and "(erased)" or "(trimmed)".
                        print(f"{entry.position}\t{entry.resource_type}", flush=True)
                        position = entry.position
                        continue
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


def _index(parsed: argparse.Namespace) -> int:
    import signal
    import threading

    from eventstore.indexer import IndexReport, RepairReport
    from eventstore.urls import open_store

    if not 0 < parsed.interval <= 60:
        raise InvalidInput("--interval must be more than 0 and at most 60 seconds")
    line = ProgressLine(sys.stderr)
    began = time.monotonic()

    def show(report: IndexReport) -> None:
        line.show(
            f"  {report.indexed:,} versions indexed, {report.records:,} stream records read, "
            f"{duration(time.monotonic() - began)}"
        )

    stop = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    if parsed.follow and threading.current_thread() is threading.main_thread():
        # A deployment stops a follower with SIGTERM: finish the write in flight, then stop.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with open_store(parsed.url, index_on_read=False) as store, line:
            if parsed.follow:
                total = store.indexer.follow(stop, poll_interval=parsed.interval, progress=show)
            else:
                total = store.indexer.catch_up(progress=show)
            line.end()
            print(
                f"{total.indexed:,} versions indexed from {total.records:,} stream records in "
                f"{total.writes:,} writes ({total.races:,} lost to another indexer and redone); "
                f"last position: "
                + ", ".join(
                    f"{store.clock.last(p, read=True):,}"
                    + (f" (partition {p})" if store.clock.partitions() > 1 else "")
                    for p in range(store.clock.partitions())
                )
            )
            if parsed.repair:

                def repaired(report: RepairReport) -> None:
                    line.show(
                        f"  repair: {report.streams:,} streams, {report.versions:,} versions "
                        f"checked, {report.missing:,} indexed"
                    )

                found = store.indexer.repair(progress=repaired)
                line.end()
                print(
                    f"repair: {found.streams:,} streams and {found.versions:,} retained versions "
                    f"checked against {found.positions:,} positions; {found.missing:,} versions "
                    "the index lacked are indexed now"
                )
    finally:
        if parsed.follow and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    return 0


def _check(parsed: argparse.Namespace) -> int:
    from eventstore.checking import CheckReport, check

    classes = [_resource_class(spec) for spec in parsed.types]

    line = ProgressLine(sys.stderr)

    def show(report: CheckReport) -> None:
        line.show(
            f"  {report.streams:,} streams, {report.read:,} versions read "
            f"({report.upcast:,} upcast), {len(report.failures):,} failures, "
            f"{duration(report.seconds)}"
        )

    with _open(parsed) as store, line:
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
