"""Every ```python block of the README and docs/ runs as written, so the docs cannot rot.

Blocks of one file run in order in one namespace, in a fresh Python process (as a reader would run
them: the docs' own ``Order`` is not the test suite's) and a fresh temporary directory (files such
as ``shop.db`` land there). Blocks fenced as ```python dynamodb run only when DynamoDB Local is up,
with ``http://127.0.0.1:8000`` replaced by its address and the table created first. Blocks fenced
as ```python s3 run only when the test S3 server is up, with ``http://127.0.0.1:8333`` replaced by
its address.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DYNAMODB_ENDPOINT, S3_ENDPOINT

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks(path: Path) -> list[tuple[str, str]]:
    return [(m.group(1).strip(), m.group(2)) for m in BLOCK.finditer(path.read_text())]


# Runs the blocks given as JSON on stdin in one namespace; names the block that failed.
_DRIVER = """
import json, sys, traceback, types
# A real module, so that libraries which find classes by module name (eventsourcing's topics)
# find the page's classes.
module = types.ModuleType(sys.argv[1])
sys.modules[sys.argv[1]] = module
for name, code in json.load(sys.stdin):
    try:
        exec(compile(code, name, "exec"), module.__dict__)
    except Exception:
        traceback.print_exc()
        sys.exit(f"{name} failed:\\n{code}")
"""


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_doc_code_runs(path: Path, tmp_path: Path) -> None:
    found = blocks(path)
    if not found:
        pytest.skip(f"{path.name} has no python blocks")
    program: list[tuple[str, str]] = []
    for number, (tags, code) in enumerate(found, 1):
        if "dynamodb" in tags:
            if not DYNAMODB_ENDPOINT:
                continue
            code = code.replace("http://127.0.0.1:8000", DYNAMODB_ENDPOINT)
        if "s3" in tags.split():
            if not S3_ENDPOINT:
                continue
            code = code.replace("http://127.0.0.1:8333", S3_ENDPOINT)
        program.append((f"{path.name}[block {number}]", code))
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, f"docs_{path.stem}"],
        input=json.dumps(program),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def test_docs_have_code() -> None:
    assert blocks(ROOT / "README.md"), "the README quickstart must be executable"
    assert blocks(ROOT / "docs" / "quickstart.md")
