"""The table schema given to infrastructure-as-code users matches what create_table builds."""

from __future__ import annotations

import re
from pathlib import Path

from eventstore.backends.base import INDEXES, index_keys
from eventstore.backends.dynamodb import INDEX_ATTRIBUTES

DOC = (Path(__file__).resolve().parent.parent / "docs" / "backends.md").read_text()


def test_cloudformation_attributes_match_create_table() -> None:
    declared = re.findall(r"AttributeName: (\w+), AttributeType: S", DOC)
    expected = ["pk", "sk", *[name for index in INDEXES for name in index_keys(index)]]
    assert declared == expected


def test_documented_gsi_projection_matches() -> None:
    assert re.search(r"NonKeyAttributes: \[v, id\]", DOC)
    assert list(INDEX_ATTRIBUTES) == ["v", "id"]
    assert f"range({len(INDEXES)})" in DOC  # CDK and Terraform loops cover every index
