"""The shortcut of the exactness check (eventstore.roundtrip): a state it calls plain reads back
from its JSON as an equal state of the same types, for every state hypothesis makes, including
values of the wrong type that ``model_copy(update=...)`` and ``model_construct`` let through;
and models it cannot vouch for are always checked in full."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, computed_field, field_validator

from eventstore import InvalidState, Resource, roundtrip
from eventstore.inputs import serialize


class Line(BaseModel):
    sku: str
    qty: int
    price: Decimal


class Doc(Resource):
    resource_type = "RoundtripDoc"

    name: str
    count: int
    flag: bool
    ratio: float
    amount: Decimal
    at: datetime
    day: date
    note: str | None = None
    lines: list[Line] = []
    extra: dict[str, int] = {}
    child: Line | None = None


class Tree(Resource):
    resource_type = "RoundtripTree"

    label: str
    children: list[Tree] = []


def _read_back(state: BaseModel) -> BaseModel | None:
    """What the full check gives: the state read back from its JSON, if equal and of the same
    types all the way down, else ``None``."""
    data = state.__pydantic_serializer__.to_json(state, by_alias=True)
    try:
        clean = type(state).__pydantic_validator__.validate_json(data)
    except ValueError:
        return None
    return clean if clean == state and _same_types(clean, state) else None


def _shares_nothing_mutable(a: Any, b: Any) -> bool:
    """No model, list or dict of ``a`` is an object of ``b``."""
    if isinstance(a, (BaseModel, list, dict)) and a is b:
        return False
    if isinstance(a, BaseModel):
        return all(_shares_nothing_mutable(a.__dict__[k], b.__dict__[k]) for k in a.__dict__)
    if isinstance(a, list):
        return all(map(_shares_nothing_mutable, a, b))
    if isinstance(a, dict):
        return all(_shares_nothing_mutable(a[k], b[k]) for k in a)
    return True


def _copy_is_the_read_back(found: roundtrip.Plain, state: BaseModel, clean: BaseModel) -> None:
    copied = found.copy(state)
    assert copied == clean and _same_types(copied, clean)
    assert copied.model_fields_set == clean.model_fields_set
    assert _shares_nothing_mutable(copied, state)


def _same_types(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (what "exactly" means)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, BaseModel):
        return all(_same_types(a.__dict__[k], b.__dict__[k]) for k in a.__dict__)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same_types, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return False
    return bool(a == b)


class Tag(str):
    """A str subclass: JSON writes its text, reading gives a plain str."""


def _offsets() -> st.SearchStrategy[timezone | None]:
    minutes = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
    seconds = st.integers(-86_399, 86_399).map(lambda s: timezone(timedelta(seconds=s)))
    return st.one_of(st.none(), st.just(timezone.utc), minutes, seconds)


def _any_value() -> st.SearchStrategy[Any]:
    """Values of every kind, for any field: right, wrong and tricky ones."""
    return st.one_of(
        st.text(max_size=5),
        st.text(max_size=5).map(Tag),
        st.integers(),
        st.integers(min_value=10**4290, max_value=10**4310),
        st.booleans(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.datetimes(timezones=_offsets()),
        st.dates(),
        st.none(),
        st.lists(st.integers(), max_size=2),
        st.tuples(st.integers()),
    )


def _lines() -> st.SearchStrategy[Line]:
    right = st.builds(
        Line,
        sku=st.text(max_size=5),
        qty=st.integers(),
        price=st.decimals(allow_nan=False, allow_infinity=False),
    )
    wrong = st.builds(
        lambda sku, qty, price: Line.model_construct(sku=sku, qty=qty, price=price),
        _any_value(),
        _any_value(),
        _any_value(),
    )
    return st.one_of(right, wrong)


@st.composite
def docs(draw: st.DrawFn) -> Doc:
    right: dict[str, Any] = {
        "name": draw(st.text(max_size=8)),
        "count": draw(st.integers()),
        "flag": draw(st.booleans()),
        "ratio": draw(st.floats(allow_nan=False, allow_infinity=False)),
        "amount": draw(st.decimals(allow_nan=False, allow_infinity=False)),
        "at": draw(st.datetimes(timezones=_offsets())),
        "day": draw(st.dates()),
        "note": draw(st.one_of(st.none(), st.text(max_size=4))),
        "lines": draw(st.lists(_lines(), max_size=3)),
        "extra": draw(st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
        "child": draw(st.one_of(st.none(), _lines())),
    }
    # Any field may get any value, as model_copy(update=...) allows.
    for name in draw(st.lists(st.sampled_from(sorted(right)), max_size=3, unique=True)):
        right[name] = draw(_any_value())
    return Doc.model_construct(**right)


@given(docs())
def test_a_state_called_plain_reads_back_exactly(state: Doc) -> None:
    found = roundtrip.plain(Doc)
    assert found is not None
    try:
        plain = found.check(state)
    except Exception as e:  # the shortcut never fails where the full check would decide
        pytest.fail(f"the check raised {e!r}")
    if plain:
        clean = _read_back(state)
        assert clean is not None, state
        _copy_is_the_read_back(found, state, clean)


@given(
    st.recursive(
        st.builds(Tree, label=st.text(max_size=3)),
        lambda inner: st.builds(
            Tree, label=st.text(max_size=3), children=st.lists(inner, max_size=3)
        ),
    )
)
def test_recursive_models_are_walked(tree: Tree) -> None:
    found = roundtrip.plain(Tree)
    assert found is not None and found.check(tree)
    clean = _read_back(tree)
    assert clean is not None
    _copy_is_the_read_back(found, tree, clean)


def test_ordinary_documents_take_the_shortcut_and_tricky_values_do_not() -> None:
    found = roundtrip.plain(Doc)
    assert found is not None
    check = found.check
    good = Doc(
        name="a",
        count=1,
        flag=True,
        ratio=0.1,
        amount=Decimal("1.50"),
        at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2))),
        day=date(2026, 1, 2),
        lines=[Line(sku="x", qty=2, price=Decimal("3"))],
    )
    assert check(good)
    stored = serialize(good, 10**6)[1]
    assert stored == good and stored is not good and stored.lines[0] is not good.lines[0]
    sub_minute = good.model_copy(
        update={"at": datetime(2026, 1, 1, tzinfo=timezone(timedelta(seconds=30)))}
    )
    assert not check(sub_minute)
    with pytest.raises(InvalidState):  # the full check still refuses what JSON would change
        serialize(sub_minute, 10**6)
    for update in (
        {"count": True},
        {"amount": 1.5},
        {"name": Tag("t")},
        {"lines": (Line(sku="x", qty=1, price=Decimal(1)),)},
        {"count": 10**5000},
        {"amount": Decimal("NaN")},
        {"ratio": float("nan")},
        {"ratio": float("inf")},
        {"day": datetime(2026, 1, 2)},
    ):
        assert not check(good.model_copy(update=update)), update


class _Validated(Resource):
    resource_type = "RoundtripValidated"
    name: str

    @field_validator("name")
    @classmethod
    def shout(cls, value: str) -> str:
        return value.upper()


class _Computed(Resource):
    resource_type = "RoundtripComputed"
    name: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def size(self) -> int:
        return len(self.name)


class _Excluded(Resource):
    resource_type = "RoundtripExcluded"
    name: str
    secret: str = Field(default="", exclude=True)


class _Private(Resource):
    resource_type = "RoundtripPrivate"
    name: str
    _seen: int = PrivateAttr(default=0)


class _Stripped(Resource):
    resource_type = "RoundtripStripped"
    model_config = ConfigDict(str_strip_whitespace=True)
    name: str


class _Open(Resource):
    resource_type = "RoundtripOpen"
    model_config = ConfigDict(extra="allow")
    name: str


class _Colour(Enum):
    RED = "red"


class _Constrained(Resource):
    resource_type = "RoundtripConstrained"
    name: str = Field(max_length=3)


class _Anything(Resource):
    resource_type = "RoundtripAnything"
    value: Any


class _Union(Resource):
    resource_type = "RoundtripUnion"
    value: int | str


class _Enum(Resource):
    resource_type = "RoundtripEnum"
    colour: _Colour


@pytest.mark.parametrize(
    "cls",
    [
        _Validated,
        _Computed,
        _Excluded,
        _Private,
        _Stripped,
        _Open,
        _Constrained,
        _Anything,
        _Union,
        _Enum,
    ],
)
def test_models_it_cannot_vouch_for_are_checked_in_full(cls: type[Resource]) -> None:
    assert roundtrip.plain(cls) is None
