"""The generic registry (facebench.registry): duplicate names refused, unknown names suggested, order kept."""

from __future__ import annotations

import pytest

from facebench.errors import FacebenchError
from facebench.registry import Registry, did_you_mean


def _fruit() -> Registry[int]:
    reg: Registry[int] = Registry("fruit")
    reg.add("cherry", 3, owner="tests.a")
    reg.add("apple", 1, owner="tests.a")
    reg.add("banana", 2, owner="tests.b")
    return reg


def test_lookup_listing_and_registration_order():
    reg = _fruit()
    assert reg.get("apple") == 1 and reg["banana"] == 2
    assert reg.names() == ("cherry", "apple", "banana")  # registration order, not sorted
    assert list(reg) == ["cherry", "apple", "banana"]
    assert list(reg.items()) == [("cherry", 3), ("apple", 1), ("banana", 2)]
    assert len(reg) == 3 and "apple" in reg and "pear" not in reg
    assert reg.check("cherry") == "cherry"


def test_a_second_registration_names_both_owners():
    reg = _fruit()
    with pytest.raises(FacebenchError) as info:
        reg.add("apple", 9, owner="tests.c")
    assert str(info.value) == "duplicate fruit name 'apple': registered by tests.a and again by tests.c"
    assert reg.get("apple") == 1  # the first entry is kept


def test_the_decorator_registers_under_the_entry_module():
    reg: Registry[object] = Registry("maker")

    @reg.register("twice")
    def twice(x: int) -> int:
        return 2 * x

    assert reg.get("twice") is twice and reg.get("twice")(4) == 8
    with pytest.raises(FacebenchError, match=f"registered by {__name__} and again by {__name__}"):
        reg.register("twice")(twice)


def test_an_unknown_name_names_the_table_suggests_and_lists():
    with pytest.raises(FacebenchError) as info:
        _fruit().get("aple", "basket.toml: [fruit] name")
    assert str(info.value) == (
        "basket.toml: [fruit] name: unknown fruit 'aple'; did you mean 'apple'? (known: cherry, apple, banana)"
    )
    with pytest.raises(FacebenchError) as info:
        _fruit().check("zzz")
    assert str(info.value) == "unknown fruit 'zzz' (known: cherry, apple, banana)"  # nothing close: no suggestion
    with pytest.raises(FacebenchError, match=r"unknown fruit \['apple'\]"):
        _fruit().get(["apple"])  # type: ignore[arg-type]  # unhashable: still the same error


def test_entries_given_to_the_constructor_are_added_in_order_and_checked():
    reg = Registry("colour", [("red", 1), ("green", 2), ("blue", 3)])
    assert reg.names() == ("red", "green", "blue") and list(reg.values()) == [1, 2, 3]
    with pytest.raises(FacebenchError, match="duplicate colour name 'red': registered by facebench and again by "
                                              "facebench"):
        Registry("colour", [("red", 1), ("red", 2)])


@pytest.mark.parametrize("name, choices, expected", [
    ("iresnet51", ["iresnet18", "iresnet50", "iresnet100"],
     "; did you mean 'iresnet50' or 'iresnet18' or 'iresnet100'?"),
    ("mv-amm", ["softmax", "am", "arc", "mv-am", "mv-arc"], "; did you mean 'mv-am' or 'mv-arc' or 'am'?"),
    ("xyz", ["apple", "banana"], ""),
    ("a", [], ""),
])
# ratios (difflib): iresnet50 and iresnet18 16/18, iresnet100 16/19; mv-am 10/11, mv-arc 8/12, am 4/8 (the cutoff)
def test_did_you_mean_orders_close_names_best_first(name, choices, expected):
    assert did_you_mean(name, choices) == expected
