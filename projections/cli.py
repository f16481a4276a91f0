"""``eventstore rebuild URL module:Class [--segments N] [--reset]``: rebuild a projection from the
command line, with a progress bar on stderr and the report on stdout."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from eventstore.console import NotFound, ProgressLine, duration, load_object
from eventstore.errors import EventStoreError, InvalidInput, ProjectionError
from projections.projection import Projection, as_projection
from projections.rebuild import MAX_SEGMENTS, RebuildReport, rebuild

_BAR_WIDTH = 30


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventstore rebuild",
        description=(
            "Recompute a projection's index keys on every head of its resource type. "
            "Idempotent and resumable: an interrupted run continues where it stopped."
        ),
    )
    parser.add_argument(
        "url", help="store URL, e.g. sqlite:///shop.db or dynamodb://TABLE?region=R"
    )
    parser.add_argument(
        "target",
        metavar="module:Class",
        help="the projection: a Projection subclass (or instance) importable from the current "
        "directory, e.g. shop.projections:OrdersByStatus",
    )
    parser.add_argument(
        "--segments",
        type=int,
        default=4,
        help=f"heads processed in parallel, 1 to {MAX_SEGMENTS} (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="ignore saved progress and start from the beginning"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (the report is still printed)"
    )
    return parser


def load_projection(target: str) -> Projection[Any]:
    """The projection named ``module:attribute`` (a class is instantiated without arguments)."""
    try:
        return as_projection(load_object(target))
    except NotFound as e:
        raise ProjectionError(str(e)) from None


class ProgressBar:
    """A plain-text progress bar: redrawn in place on a terminal, a line every few seconds
    otherwise (logs, CI)."""

    def __init__(self, stream: TextIO, every: float = 2.0) -> None:
        self._line = ProgressLine(stream, every)

    def __call__(self, report: RebuildReport) -> None:
        total = report.total or 0
        share = min(1.0, report.scanned / total) if total else 1.0
        filled = int(share * _BAR_WIDTH)
        rate = report.scanned / report.seconds if report.seconds > 0 else 0.0
        self._line.show(
            f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {share:4.0%} "
            f"{report.scanned:,}/{total:,} heads  {rate:,.0f}/s  "
            f"updated {report.updated:,}  {duration(report.seconds)}",
            final=report.total is not None and report.scanned >= report.total,
        )


def format_report(report: RebuildReport) -> str:
    rows = [
        ("scanned", f"{report.scanned:,}"),
        ("updated", f"{report.updated:,}"),
        ("unchanged", f"{report.unchanged:,}"),
        ("skipped as newer", f"{report.skipped_newer:,}"),
        *([("shredded", f"{report.shredded:,}")] if report.shredded else []),
        ("time", duration(report.seconds)),
    ]
    head = f"rebuilt {report.resource_type}/{report.projection}"
    if report.resumed:
        head += f" (resumed: totals include {report.earlier:,} heads of earlier runs)"
    return "\n".join([head, *(f"  {name:<17}{value:>12}" for name, value in rows)])


def rebuild_main(argv: list[str]) -> int:
    """Run ``eventstore rebuild``; returns the exit code (0 done, 1 failed, 2 bad usage,
    130 interrupted with progress saved)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    from eventstore.urls import open_store

    try:
        projection = load_projection(args.target)
        with open_store(args.url, projections=[projection]) as store:
            report = rebuild(
                store,
                projection,
                segments=args.segments,
                reset=args.reset,
                progress=None if args.quiet else ProgressBar(sys.stderr),
            )
    except KeyboardInterrupt:
        print(
            "\neventstore rebuild: interrupted; progress saved, run again to resume",
            file=sys.stderr,
        )
        return 130
    except (ProjectionError, InvalidInput) as e:
        print(f"eventstore rebuild: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except (EventStoreError, ValueError) as e:
        print(f"eventstore rebuild: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0
