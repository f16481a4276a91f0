"""Run the reliability suites and print their figures.

Usage::

    .venv/bin/python scripts/reliability_report.py            # CI size (a few minutes)
    EVENTSTORE_LONG=1 HYPOTHESIS_PROFILE=long .venv/bin/python scripts/reliability_report.py

Starts DynamoDB Local (scripts/dynamodb_local.py), runs the four reliability test modules with
``EVENTSTORE_RELIABILITY_OUT`` pointing at a temporary file where each scenario writes one JSON
line of figures, then prints those figures and the totals quoted in docs/reliability.md. Extra
arguments go to pytest. Exits with pytest's exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
MODULES = [
    "tests/test_reliability_faults.py",
    "tests/test_reliability_crash.py",
    "tests/test_reliability_writers.py",
    "tests/test_hostile_input.py",
]


def main(argv: list[str]) -> int:
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.jsonl"
        env = {**os.environ, "EVENTSTORE_RELIABILITY_OUT": str(out)}
        command = [
            python,
            str(PROJECT / "scripts" / "dynamodb_local.py"),
            "run",
            "--",
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *MODULES,
            *argv,
        ]
        began = time.monotonic()
        code = subprocess.run(command, cwd=PROJECT, env=env).returncode
        seconds = time.monotonic() - began
        records = (
            [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        )
    print()
    print(f"== reliability figures ({'long' if os.environ.get('EVENTSTORE_LONG') else 'CI'} size)")
    for record in records:
        print(json.dumps(record, sort_keys=False))
    by = {r["scenario"]: r for r in records}
    faults = by.get("dynamodb_faults", {})
    crash = by.get("sqlite_sigkill", {})
    hostile = by.get("hostile_input", {})
    lost = faults.get("lost", 0) + crash.get("versions_lost", 0)
    writers = [by.get(name, {}) for name in ("sqlite_8_processes", "dynamodb_8_threads")]
    print()
    print(f"faulted operations:          {faults.get('operations', '-')}")
    print(f"faults injected:             {faults.get('faults_injected', '-')}")
    print(f"operations retried (ok):     {faults.get('operations_retried_ok', '-')}")
    print(f"operations given up (typed): {faults.get('operations_gave_up', '-')}")
    print(f"crashes survived (SIGKILL):  {crash.get('kills', '-')}")
    print(f"appends acknowledged:        {crash.get('appends_acknowledged', '-')} (crash test)")
    for w in writers:
        if w:
            print(
                f"{w['scenario']:<28} {w['increments']} increments, "
                f"{w['conflicts_retried']} conflicts retried, {w['problems']} problems"
            )
    print(f"bad inputs tried:            {hostile.get('bad_inputs_tried', '-')}")
    print(f"versions lost:               {lost}")
    print(f"pytest exit code:            {code}   ({seconds:.0f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
