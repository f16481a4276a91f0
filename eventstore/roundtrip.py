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
from dataclasses import dataclass
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

# Kinds of values checked by their exact type (and finiteness, size or offset): the keys their
# schema may hold, and the test of a value ``v``.
_LEAVES: dict[str, tuple[tuple[str, ...], str]] = {
    "str": ((), "type({v}) is str"),
    "bool": ((), "type({v}) is bool"),
    "date": ((), "type({v}) is _date"),
    "int": ((), "(type({v}) is int and -_L < {v} < _L)"),
    "float": (("allow_inf_nan",), "(type({v}) is float and _isfinite({v}))"),
    "decimal": (("allow_inf_nan",), "(type({v}) is _Decimal and {v}.is_finite())"),
    "datetime": (("microseconds_precision",), "_datetime_ok({v})"),
}


@dataclass(frozen=True)
class Plain:
    """What is known of a class whose states can be shown plain: ``check(state)`` tells whether
    a state is (its JSON reads back as an equal state of the same types), and ``copy(state)``
    makes, for a plain state, what reading it back would give: new models, lists and dicts
    (every field set), the immutable values shared."""

    check: Check
    copy: Callable[[Any], Any]


_PLAIN: dict[type, Plain | None] = {}
_LOCK = threading.Lock()


def plain(cls: type[BaseModel]) -> Plain | None:
    """The :class:`Plain` of ``cls``, or ``None`` if no state of ``cls`` can be shown plain this
    way. Built once per class."""
    try:
        return _PLAIN[cls]
    except KeyError:
        pass
    try:
        found: Plain | None = _Compiler(dict(cls.__pydantic_core_schema__)).compile_root()
    except _NotPlain:
        found = None
    with _LOCK:
        _PLAIN[cls] = found
    return found


class _NotPlain(Exception):
    pass


def _only(schema: dict[str, Any], *allowed: str) -> None:
    extra = schema.keys() - _HARMLESS - set(allowed)
    if extra:
        raise _NotPlain(f"{schema['type']} with {sorted(extra)}")


class _Compiler:
    """Turns a core schema into Python source: one function per model, each an expression of
    exact type tests over its fields (generated, as dataclasses generates ``__init__``, because
    a walk through nested closures cost more than the validation it replaces)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.definitions: dict[str, dict[str, Any]] = {}
        self.functions: dict[str, str] = {}  # model ref (or id) -> function name
        self.source: list[str] = []
        self.namespace: dict[str, Any] = {
            "_Decimal": Decimal,
            "_date": date,
            "_isfinite": math.isfinite,
            "_datetime_ok": _plain_datetime,
            "_L": _INT_LIMIT,
            "_new": object.__new__,
            "_set": object.__setattr__,
        }
        self.counter = 0

    def compile_root(self) -> Plain:
        schema = self.root
        if schema["type"] == "definitions":
            for definition in schema["definitions"]:
                self.definitions[definition["ref"]] = definition
            schema = schema["schema"]
        if schema["type"] == "definition-ref":  # a recursive model refers to itself
            schema = self.definitions.get(schema["schema_ref"], schema)
        if schema["type"] != "model":
            raise _NotPlain(schema["type"])
        name = self._model(schema)
        exec("\n".join(self.source), self.namespace)
        return Plain(self.namespace[name], self.namespace[_copy_of(name)])

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def expr(self, schema: dict[str, Any], var: str) -> str:
        """A Python expression that is true when ``var`` holds a plain value of ``schema``."""
        kind = schema["type"]
        if kind == "definition-ref":
            _only(schema, "schema_ref")
            ref = schema["schema_ref"]
            if ref not in self.definitions:
                raise _NotPlain(f"unknown reference {ref}")
            return self.expr(self.definitions[ref], var)
        leaf = _LEAVES.get(kind)
        if leaf is not None:
            allowed, template = leaf
            _only(schema, *allowed)
            return template.format(v=var)
        if kind == "nullable":
            _only(schema, "schema")
            return f"({var} is None or {self.expr(schema['schema'], var)})"
        if kind == "default":
            _only(schema, "schema", "default", "default_factory", "default_factory_takes_data")
            return self.expr(schema["schema"], var)
        if kind == "list":
            _only(schema, "items_schema")
            if "items_schema" not in schema:
                raise _NotPlain("list of anything")
            item = self._name("x")
            inner = self.expr(schema["items_schema"], item)
            return f"(type({var}) is list and all({inner} for {item} in {var}))"
        if kind == "dict":
            _only(schema, "keys_schema", "values_schema")
            if schema.get("keys_schema") != {"type": "str"} or "values_schema" not in schema:
                raise _NotPlain("dict not keyed by str")
            item = self._name("x")
            inner = self.expr(schema["values_schema"], item)
            return (
                f"(type({var}) is dict and all(type({item}) is str for {item} in {var}) "
                f"and all({inner} for {item} in {var}.values()))"
            )
        if kind == "model":
            return f"{self._model(schema)}({var})"
        raise _NotPlain(kind)

    def copy(self, schema: dict[str, Any], var: str) -> str:
        """A Python expression making, from a plain value ``var`` of ``schema``, the value
        reading its JSON back gives (``var`` itself where the value is immutable)."""
        kind = schema["type"]
        if kind == "definition-ref":
            return self.copy(self.definitions[schema["schema_ref"]], var)
        if kind in _LEAVES:
            return var
        if kind == "nullable":
            inner = self.copy(schema["schema"], var)
            return var if inner == var else f"(None if {var} is None else {inner})"
        if kind == "default":
            return self.copy(schema["schema"], var)
        if kind == "list":
            item = self._name("y")
            inner = self.copy(schema["items_schema"], item)
            return f"list({var})" if inner == item else f"[{inner} for {item} in {var}]"
        if kind == "dict":
            item = self._name("y")
            inner = self.copy(schema["values_schema"], item)
            if inner == item:
                return f"dict({var})"
            return f"{{k: {inner} for k, {item} in {var}.items()}}"
        if kind == "model":
            return f"{_copy_of(self._model(schema))}({var})"
        raise _NotPlain(kind)

    def _model(self, schema: dict[str, Any]) -> str:
        """The name of the function checking a model (made once per model)."""
        key = schema.get("ref") or str(id(schema))
        if key in self.functions:
            return self.functions[key]
        name = self.functions[key] = self._name("_model")
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
        cls_name = self._name("_cls")
        self.namespace[cls_name] = cls
        loads: list[str] = []
        tests: list[str] = []
        copies: list[str] = []
        for i, (field_name, field) in enumerate(fields["fields"].items()):
            _only(field, "schema", "validation_alias", "serialization_alias", "frozen")
            loads.append(f"        f{i} = d[{field_name!r}]")
            tests.append(self.expr(field["schema"], f"f{i}"))
            copies.append(f"{field_name!r}: {self.copy(field['schema'], f'd[{field_name!r}]')}")
        names = self._name("_fields")
        self.namespace[names] = frozenset(fields["fields"])
        # As model_construct makes an instance; every field counts as set, as after validation.
        self.source += [
            f"def {_copy_of(name)}(v):",
            "    d = v.__dict__",
            f"    n = _new({cls_name})",
            f"    _set(n, '__dict__', {{{', '.join(copies)}}})",
            f"    _set(n, '__pydantic_fields_set__', set({names}))",
            "    _set(n, '__pydantic_extra__', None)",
            "    _set(n, '__pydantic_private__', None)",
            "    return n",
            "",
        ]
        self.source += [
            f"def {name}(v):",
            f"    if type(v) is not {cls_name} or v.__pydantic_extra__:",
            "        return False",
            "    d = v.__dict__",
            f"    if len(d) != {len(loads)}:",
            "        return False",
            "    try:",
            *loads,
            "    except KeyError:",
            "        return False",
            f"    return bool({' and '.join(tests) or 'True'})",
            "",
        ]
        return name


def _copy_of(check: str) -> str:
    """The name of the generated copier of the model whose checker is named ``check``."""
    return check.replace("_model", "_copy")


def _plain_datetime(value: Any) -> bool:
    if type(value) is not datetime:
        return False
    offset = value.utcoffset()
    return offset is None or (offset.seconds % 60 == 0 and offset.microseconds == 0)
