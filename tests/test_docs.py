"""Every ```python block of the README and docs/ runs as written, so the docs cannot rot.

Blocks of one file run in order in one namespace, in a fresh temporary directory (files such as
``shop.db`` land there). Blocks fenced as ```python dynamodb run only when DynamoDB Local is up,
with ``http://127.0.0.1:8000`` replaced by its address and the table created first.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import DYNAMODB_ENDPOINT

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks(path: Path) -> list[tuple[str, str]]:
    return [(m.group(1).strip(), m.group(2)) for m in BLOCK.finditer(path.read_text())]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_doc_code_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = blocks(path)
    if not found:
        pytest.skip(f"{path.name} has no python blocks")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for number, (tags, code) in enumerate(found, 1):
        if "dynamodb" in tags:
            if not DYNAMODB_ENDPOINT:
                continue
            code = code.replace("http://127.0.0.1:8000", DYNAMODB_ENDPOINT)
        try:
            exec(compile(code, f"{path.name}[block {number}]", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{path.name} block {number} failed: {e!r}\n{code}") from e


def test_docs_have_code() -> None:
    assert blocks(ROOT / "README.md"), "the README quickstart must be executable"
    assert blocks(ROOT / "docs" / "quickstart.md")
