"""model.members / member_count on any JSON value: the fast paths agree with the plain definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tickstockpl.universes import model


def reference_members(value):
    """Contract §5.1 spelled out item by item (what members() must return)."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    if not isinstance(value, dict):
        return []
    out = []
    for field in ("stocks", "etfs"):
        items = value.get(field)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    ticker = item.get("ticker") or item.get("symbol")
                    if isinstance(ticker, str):
                        out.append(ticker)
    return out


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=4))
tickers = st.one_of(st.sampled_from(["AAPL", "MSFT", "BRK.B", ""]), scalars)
items = st.one_of(
    st.fixed_dictionaries({"ticker": tickers}, optional={"symbol": tickers, "rank": st.integers()}),
    st.fixed_dictionaries({"symbol": tickers}),
    scalars,
    st.lists(st.text(max_size=3), max_size=2),
)
values = st.one_of(
    scalars,
    st.lists(st.one_of(st.sampled_from(["AAPL", "MSFT", "X"]), scalars), max_size=8),
    st.fixed_dictionaries({}, optional={"stocks": st.one_of(st.lists(items, max_size=6), scalars),
                                        "etfs": st.one_of(st.lists(items, max_size=6), scalars),
                                        "count": st.integers()}),
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_members_agrees_with_the_plain_definition(value):
    assert model.members(value) == reference_members(value)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["AAPL", "MSFT", "BRK.B"]), max_size=8))
def test_member_count_of_ticker_arrays_and_well_formed_objects(symbols):
    assert model.member_count(symbols) == len(symbols)
    obj = {"count": len(symbols), "stocks": [{"ticker": s, "rank": i} for i, s in enumerate(symbols, 1)],
           "etfs": [{"symbol": s} for s in symbols]}
    assert model.member_count(obj) == len(model.members(obj)) == 2 * len(symbols)


def test_a_ticker_comes_before_the_symbol_of_the_same_item():
    items = [{"ticker": "AAPL", "symbol": "X1"}, {"ticker": None, "symbol": "X2"}, {"symbol": "X3"}]
    assert model.members({"etfs": items}) == ["AAPL", "X2", "X3"] == reference_members({"etfs": items})


def test_members_returns_a_new_list():
    value = ["AAPL", "MSFT"]
    got = model.members(value)
    got.append("X")
    assert value == ["AAPL", "MSFT"]
