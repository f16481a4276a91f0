"""Run every benchmark and write its output into the docs (``bench/run``).

Each benchmark's output replaces the block between ``<!-- bench/run: NAME -->`` and
``<!-- /bench/run -->`` wherever it is in the README or docs/ (docs/benchmarks.md holds most),
headed by the date, the machine and the command, so every such figure comes from the latest run. DynamoDB Local is started once for the benchmarks
that need it (installed as the test suite installs it) and stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from eventstore.local import DUMMY_ENV, install, start, stop

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ENDPOINT_VAR = "EVENTSTORE_DYNAMODB_ENDPOINT"


@dataclass(frozen=True)
class Bench:
    name: str
    args: tuple[str, ...]
    dynamodb: bool
    #: Needs an S3 server too (SeaweedFS, eventstore.local_s3).
    s3: bool = False


BENCHES = [
    Bench("dynamodb_costs", ("bench/dynamodb_costs.py",), True),
    Bench("feed", ("bench/feed.py",), True),
    Bench("feed_scale", ("bench/feed_scale.py",), True),
    Bench("commits", ("bench/commits.py",), True),
    Bench("everyday", ("bench/everyday.py",), True),
    Bench("client_cpu", ("bench/client_cpu.py",), True),
    Bench("eventsourcing_recorders", ("bench/eventsourcing_recorders.py",), True),
    Bench("sqlite_appends_full", ("bench/sqlite_appends.py",), False),
    Bench("sqlite_appends_normal", ("bench/sqlite_appends.py", "--synchronous", "normal"), False),
    Bench("sqlite_many", ("bench/sqlite_many.py",), False),
    Bench("append_costs", ("bench/append_costs.py",), False),
    Bench("rebuild", ("bench/rebuild.py",), True),
    Bench("async_appends", ("bench/async_appends.py",), True),
    Bench("blobs", ("bench/blobs.py", "--streams", "3"), True, s3=True),
    Bench("encryption", ("bench/encryption.py",), True),
]
_BLOCK = re.compile(r"(<!-- bench/run: (?P<name>[\w-]+) -->\n)(.*?)(<!-- /bench/run -->)", re.S)


def machine() -> str:
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        memory = f", {kib / 1024**2:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{os.cpu_count()} CPUs{memory}, {platform.machine()}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def run_one(bench: Bench, env: dict[str, str]) -> str:
    began = time.monotonic()
    print(f"bench/run: {bench.name} ...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, *bench.args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"bench/run: {bench.name} failed with code {done.returncode}")
    print(f"bench/run: {bench.name} done in {time.monotonic() - began:.0f} s", file=sys.stderr)
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this (repeat)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for bench in BENCHES:
            print(f"{bench.name}: python {' '.join(bench.args)}")
        return 0
    chosen = [b for b in BENCHES if not args.only or b.name in args.only]
    unknown = set(args.only or ()) - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))} (see --list)")
    present = {m.group("name") for path in PAGES for m in _BLOCK.finditer(path.read_text())}
    missing = [b.name for b in chosen if b.name not in present]
    if missing:
        parser.error(f"no page has a block for {', '.join(missing)}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = None
    if any(b.dynamodb for b in chosen):
        server, url = start(install(ROOT / ".dynamodb-local"), apt_get=True)
        env.update({**DUMMY_ENV, ENDPOINT_VAR: url})
        print(f"bench/run: DynamoDB Local at {url}", file=sys.stderr)
    s3 = None
    if any(b.s3 for b in chosen):
        from eventstore import local_s3

        s3 = local_s3.running()
        env["EVENTSTORE_S3_ENDPOINT"] = s3.__enter__()
        print(f"bench/run: S3 (SeaweedFS) at {env['EVENTSTORE_S3_ENDPOINT']}", file=sys.stderr)
    try:
        for bench in chosen:
            when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            body = run_one(bench, env)
            against = " against DynamoDB Local" if bench.dynamodb else ""
            if bench.s3:
                against += " and SeaweedFS"
            output = (
                f"Generated by `bench/run` on {when}, {machine()}: "
                f"`python {' '.join(bench.args)}`{against}." + f"\n\n{body}\n"
            )
            # Written as each one finishes, so a later failure keeps what was measured.
            write_block(bench.name, output)
    finally:
        if server is not None:
            stop(server)
        if s3 is not None:
            s3.__exit__(None, None, None)
    return 0


def write_block(name: str, output: str) -> None:
    def replace(match: re.Match[str]) -> str:
        if match.group("name") != name:
            return match.group(0)
        return match.group(1) + output + match.group(4)

    for path in PAGES:
        text = path.read_text()
        new = _BLOCK.sub(replace, text)
        if new != text:
            path.write_text(new)
            print(f"bench/run: wrote {name} into {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
