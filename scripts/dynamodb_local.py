"""Install, start and stop Amazon's DynamoDB Local for the test suite (the server code is
``eventstore.local``, which users run as ``eventstore local``).

Usage::

    python scripts/dynamodb_local.py install
    python scripts/dynamodb_local.py run -- pytest tests -q

``run`` starts the server on a free loopback port, and SeaweedFS's S3 server beside it
(``eventstore.local_s3``), runs the command with ``EVENTSTORE_DYNAMODB_ENDPOINT``,
``EVENTSTORE_S3_ENDPOINT`` and dummy AWS credentials set, stops both servers whatever happens,
and exits with the command's code. The server is installed under the project
(``.dynamodb-local``) and Java is installed with apt-get when missing on a CI machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from eventstore import local_s3
from eventstore.local import (
    DUMMY_ENV,
    SetupError,
    ensure_java,
    exit_on_sigterm,
    install,
    start,
    stop,
)

ENV_VAR = "EVENTSTORE_DYNAMODB_ENDPOINT"
S3_ENV_VAR = "EVENTSTORE_S3_ENDPOINT"
PROJECT = Path(__file__).resolve().parent.parent
INSTALL_DIR = PROJECT / ".dynamodb-local"


def run(command: list[str]) -> int:
    """Run ``command`` against a fresh server; return its exit code."""
    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    child: subprocess.Popen[bytes] | None = None
    grace = 0.0
    try:
        proc, url = start(install(INSTALL_DIR), apt_get=True)
        try:
            with local_s3.running() as s3_url:
                env = {**os.environ, **DUMMY_ENV, ENV_VAR: url, S3_ENV_VAR: s3_url}
                print(f"DynamoDB Local at {url} (pid {proc.pid})", file=sys.stderr)
                print(f"S3 (SeaweedFS) at {s3_url}", file=sys.stderr)
                child = subprocess.Popen(command, env=env)
                return child.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the command too; give it a moment to report before ending it.
            grace = 5.0
            return 130
        finally:
            if child is not None and child.poll() is None:
                try:
                    child.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    child.terminate()
                    child.wait()
            stop(proc)
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: dynamodb_local.py install | run -- COMMAND [ARGS...]"
    if not args or args[0] in ("-h", "--help"):
        print(usage, file=sys.stderr)
        return 0 if args else 2
    try:
        if args[0] == "install":
            ensure_java(apt_get=True)
            print(install(INSTALL_DIR))
            return 0
        if args[0] == "run":
            command = args[1:]
            if command[:1] == ["--"]:
                command = command[1:]
            if not command:
                print(usage, file=sys.stderr)
                return 2
            return run(command)
    except (SetupError, subprocess.CalledProcessError) as e:
        print(f"dynamodb_local: {e}", file=sys.stderr)
        return 1
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
