"""Which states are known to read back exactly from their JSON without validating them again.

The exactness check of an append (:func:`eventstore.inputs.serialize`) validates the state's JSON
back into a model and compares it with the state: about two thirds of the CPU an append spends
in Python on a 2 KB document. For a state made only of plain values that check cannot fail, and
this module decides "plain" by looking, once per class, at the model's pydantic core schema, and
then, per state, at the exact type of every value:

- models with no validators, serializers, computed or excluded fields, private attributes,
  custom ``__init__``, ``model_post_init`` or extra fields, and whose configuration changes
  nothing a round trip does (no string stripping or case folding, temporal values as ISO text);
- fields of types ``str``, ``int``, ``bool``, ``float``, ``Decimal``, ``datetime``, ``date``,
  lists and string-keyed dicts of those, optional ones, and such models, without constraints
  (lengths, bounds, patterns, digits: validation would check them);
- values whose type is exactly the declared one (not a subclass, not another type a
  ``model_copy(update=...)`` or ``model_construct`` put there), ints of fewer than 4,300 digits,
  finite floats and decimals, datetimes whose UTC offset is whole minutes.

JSON writes each such value as text that pydantic reads back as an equal value of the same type
(``tests/test_roundtrip.py`` checks the claim against the full check with generated states).
Anything else goes through the full check, as before.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

Check = Callable[[Any], bool]

# Keys a schema may hold besides those its kind needs, without changing a round trip.
_HARMLESS = frozenset(("type", "ref", "metadata", "strict"))
# Configuration keys that change nothing a JSON round trip of plain values does.
_CONFIG_OK = frozenset(
    (
        "title",
        "ser_json_bytes",
        "val_json_bytes",
        "ser_json_inf_nan",
        "allow_inf_nan",
        "populate_by_name",
        "validate_by_name",
        "validate_by_alias",
        "serialize_by_alias",
        "loc_by_alias",
        "hide_input_in_errors",
        "validation_error_cause",
        "cache_strings",
        "revalidate_instances",
        "from_attributes",
        "regex_engine",
        "strict",
    )
)
# Python's int() refuses text of more than 4,300 digits: such ints do not read back.
_INT_LIMIT = 10**4200

# Schema kinds whose plain values are exactly of one type, nothing more to check.
_EXACT: dict[str, type] = {"str": str, "bool": bool, "date": date}

_CHECKS: dict[type, Check | None] = {}
_LOCK = threading.Lock()


def checker(cls: type[BaseModel]) -> Check | None:
    """A function telling whether a state of ``cls`` is plain (its JSON reads back exactly), or
    ``None`` if no state of ``cls`` can be shown plain this way. Built once per class."""
    try:
        return _CHECKS[cls]
    except KeyError:
        pass
    try:
        found = _Compiler(dict(cls.__pydantic_core_schema__)).compile_root()
    except _NotPlain:
        found = None
    with _LOCK:
        _CHECKS[cls] = found
    return found


class _NotPlain(Exception):
    pass


def _only(schema: dict[str, Any], *allowed: str) -> None:
    extra = schema.keys() - _HARMLESS - set(allowed)
    if extra:
        raise _NotPlain(f"{schema['type']} with {sorted(extra)}")


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.definitions: dict[str, dict[str, Any]] = {}
        self.compiled: dict[str, Check] = {}

    def compile_root(self) -> Check:
        schema = self.root
        if schema["type"] == "definitions":
            for definition in schema["definitions"]:
                self.definitions[definition["ref"]] = definition
            schema = schema["schema"]
        return self.compile(schema)

    def compile(self, schema: dict[str, Any]) -> Check:
        kind = schema["type"]
        if kind == "definition-ref":
            _only(schema, "schema_ref")
            return self._ref(schema["schema_ref"])
        ref = schema.get("ref")
        if ref is not None and ref in self.compiled:
            return self.compiled[ref]
        build = getattr(self, "_" + kind.replace("-", "_"), None)
        if build is None:
            raise _NotPlain(kind)
        check: Check = build(schema)
        if ref is not None:
            self.compiled[ref] = check
        return check

    def _ref(self, ref: str) -> Check:
        if ref in self.compiled:
            return self.compiled[ref]
        if ref not in self.definitions:
            raise _NotPlain(f"unknown reference {ref}")
        # A recursive model refers to itself: the reference resolves once compiled.
        cell: list[Check] = []
        self.compiled[ref] = lambda value: cell[0](value)
        check = self.compile({k: v for k, v in self.definitions[ref].items() if k != "ref"})
        cell.append(check)
        self.compiled[ref] = check
        return check

    def _str(self, schema: dict[str, Any]) -> Check:
        _only(schema)
        return lambda value: type(value) is str

    def _int(self, schema: dict[str, Any]) -> Check:
        _only(schema)
        return lambda value: type(value) is int and -_INT_LIMIT < value < _INT_LIMIT

    def _bool(self, schema: dict[str, Any]) -> Check:
        _only(schema)
        return lambda value: type(value) is bool

    def _float(self, schema: dict[str, Any]) -> Check:
        _only(schema, "allow_inf_nan")
        return lambda value: type(value) is float and math.isfinite(value)

    def _decimal(self, schema: dict[str, Any]) -> Check:
        _only(schema, "allow_inf_nan")
        return lambda value: type(value) is Decimal and value.is_finite()

    def _datetime(self, schema: dict[str, Any]) -> Check:
        _only(schema, "microseconds_precision")
        return _plain_datetime

    def _date(self, schema: dict[str, Any]) -> Check:
        _only(schema)
        return lambda value: type(value) is date

    def _nullable(self, schema: dict[str, Any]) -> Check:
        _only(schema, "schema")
        inner = self.compile(schema["schema"])
        return lambda value: value is None or inner(value)

    def _default(self, schema: dict[str, Any]) -> Check:
        _only(schema, "schema", "default", "default_factory", "default_factory_takes_data")
        return self.compile(schema["schema"])

    def _list(self, schema: dict[str, Any]) -> Check:
        _only(schema, "items_schema")
        items = self.compile(schema["items_schema"]) if "items_schema" in schema else None
        if items is None:
            raise _NotPlain("list of anything")
        return lambda value: type(value) is list and all(map(items, value))

    def _dict(self, schema: dict[str, Any]) -> Check:
        _only(schema, "keys_schema", "values_schema")
        keys = schema.get("keys_schema")
        if keys is None or keys != {"type": "str"} or "values_schema" not in schema:
            raise _NotPlain("dict not keyed by str")
        values = self.compile(schema["values_schema"])
        return lambda value: (
            type(value) is dict
            and all(type(k) is str for k in value)
            and all(map(values, value.values()))
        )

    def _model(self, schema: dict[str, Any]) -> Check:
        _only(schema, "cls", "schema", "custom_init", "root_model", "config")
        cls = schema["cls"]
        if schema.get("custom_init") or schema.get("root_model"):
            raise _NotPlain("custom __init__ or root model")
        config = schema.get("config", {})
        if set(config) - _CONFIG_OK - {"extra_fields_behavior"}:
            raise _NotPlain(f"config {sorted(set(config) - _CONFIG_OK)}")
        if config.get("extra_fields_behavior", "ignore") not in ("ignore", "forbid"):
            raise _NotPlain("extra fields allowed")
        if getattr(cls, "__private_attributes__", None):
            raise _NotPlain("private attributes")
        fields = schema["schema"]
        if fields.get("type") != "model-fields":
            raise _NotPlain(fields.get("type"))
        _only(fields, "fields", "model_name", "computed_fields")
        if fields.get("computed_fields"):
            raise _NotPlain("computed fields")
        # Fields whose check is their exact type alone are checked in one pass, without a
        # call each (most of a document's fields are strings).
        exact: list[tuple[str, type]] = []
        checks: list[tuple[str, Check]] = []
        for name, field in fields["fields"].items():
            _only(field, "schema", "validation_alias", "serialization_alias", "frozen")
            inner = field["schema"]
            simple = _EXACT.get(inner["type"])
            if simple is not None and not inner.keys() - _HARMLESS:
                exact.append((name, simple))
            else:
                checks.append((name, self.compile(inner)))
        count = len(exact) + len(checks)

        def check(value: Any) -> bool:
            if type(value) is not cls or value.__pydantic_extra__:
                return False
            values = value.__dict__
            if len(values) != count:
                return False
            try:
                return all(type(values[name]) is t for name, t in exact) and all(
                    each(values[name]) for name, each in checks
                )
            except KeyError:
                return False

        return check


def _plain_datetime(value: Any) -> bool:
    if type(value) is not datetime:
        return False
    offset = value.utcoffset()
    return offset is None or (offset.seconds % 60 == 0 and offset.microseconds == 0)
