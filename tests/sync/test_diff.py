"""The plan of a sync (pure): what is upserted, deleted, logged and opened/closed in history."""

from tickstockpl.sync.diff import history_changes, membership_changes, plan, with_history
from tickstockpl.universes.model import IPOS, MARKET_CAP, Entry


def stock_obj(*tickers):
    return {"count": len(tickers), "stocks": [{"ticker": t, "rank": i + 1} for i, t in enumerate(tickers)]}


def entry(key, value, family=MARKET_CAP, name="market_cap"):
    return Entry("stock_universe", name, key, value, family)


def stored(key, value, family=MARKET_CAP, name="market_cap"):
    return Entry("stock_universe", name, key, value, family)


ACTIVE = frozenset("ABCDEFG")


def test_identical_values_plan_nothing():
    p = plan([stored("mega_cap", stock_obj("A", "B"))], [entry("mega_cap", stock_obj("A", "B"))], active_symbols=ACTIVE)
    assert p.is_empty and not p.changes and p.unchanged == 1


def test_new_universe_adds_every_member():
    built = [entry("mega_cap", stock_obj("A", "B"))]
    p = plan([], built, active_symbols=ACTIVE)
    assert [(c.symbol, c.action) for c in p.changes] == [("A", "added"), ("B", "added")]
    assert p.universes[0].action == "created"
    assert history_changes(p, built, [], {}) == (
        [("stock_universe:market_cap:mega_cap", "A"), ("stock_universe:market_cap:mega_cap", "B")], [], {})


def test_added_and_removed_symbols_with_reasons():
    p = plan([stored("mega_cap", stock_obj("A", "B", "Z"))], [entry("mega_cap", stock_obj("A", "C"))],
             active_symbols=frozenset("ABC"))
    got = {(c.symbol, c.action, c.reason) for c in p.changes}
    assert got == {("C", "added", "qualifies"), ("B", "removed", "no longer qualifies"), ("Z", "removed", "delisted")}
    assert p.delisted == ("Z",)
    assert (p.universes[0].added, p.universes[0].removed) == (("C",), ("B", "Z"))


def test_same_members_other_order_is_reordered_and_metadata_is_updated():
    p = plan([stored("mega_cap", stock_obj("A", "B"))], [entry("mega_cap", stock_obj("B", "A"))], active_symbols=ACTIVE)
    assert [(c.symbol, c.action) for c in p.changes] == [(None, "reordered")]
    changed = {"count": 1, "stocks": [{"ticker": "A", "rank": 1, "market_cap": 2.0}]}
    p = plan([stored("mega_cap", stock_obj("A"))], [entry("mega_cap", changed)], active_symbols=ACTIVE)
    assert [(c.symbol, c.action) for c in p.changes] == [(None, "updated")]
    assert len(p.upserts) == 1


def test_key_no_longer_built_is_deleted_with_its_members_removed():
    built = [entry("mega_cap", stock_obj("A"))]
    p = plan([stored("mega_cap", stock_obj("A")), stored("large_cap", stock_obj("B"))], built, active_symbols=ACTIVE)
    assert [d.key for d in p.deletes] == ["large_cap"]
    assert [(c.universe, c.symbol, c.action) for c in p.changes] == [("stock_universe:market_cap:large_cap", "B", "removed")]
    counts = {"stock_universe:market_cap:large_cap": 1, "stock_universe:market_cap:mega_cap": 1}
    rows = [stored("mega_cap", stock_obj("A")), stored("large_cap", stock_obj("B"))]
    # Both counts agree with what is stored: the plan is followed, no history row needs reading.
    assert history_changes(p, built, rows, counts) == ([], [("stock_universe:market_cap:large_cap", "B")], {})


def test_history_follows_the_plan_when_its_counts_agree_with_what_is_stored():
    rows = [stored("mega_cap", stock_obj("A", "B", "Z"))]
    built = [entry("mega_cap", stock_obj("A", "C"))]
    p = plan(rows, built, active_symbols=ACTIVE)
    opened, closed, drifted = history_changes(p, built, rows, {"stock_universe:market_cap:mega_cap": 3})
    assert opened == [("stock_universe:market_cap:mega_cap", "C")]
    assert closed == [("stock_universe:market_cap:mega_cap", "B"), ("stock_universe:market_cap:mega_cap", "Z")]
    assert drifted == {}


def test_a_universe_whose_history_count_disagrees_is_drifted_and_healed_from_its_open_rows():
    rows = [stored("mega_cap", stock_obj("A", "B"))]
    built = [entry("mega_cap", stock_obj("A", "C"))]
    p = plan(rows, built, active_symbols=ACTIVE)
    opened, closed, drifted = history_changes(p, built, rows, {"stock_universe:market_cap:mega_cap": 1})
    assert (opened, closed) == ([], []) and drifted == {"stock_universe:market_cap:mega_cap": ["A", "C"]}
    assert membership_changes(drifted, {"stock_universe:market_cap:mega_cap": frozenset({"B"})}) == (
        [("stock_universe:market_cap:mega_cap", "A"), ("stock_universe:market_cap:mega_cap", "C")],
        [("stock_universe:market_cap:mega_cap", "B")])
    # a deleted universe with drifted history: every open row is closed
    p = plan(rows, [], active_symbols=ACTIVE)
    assert history_changes(p, [], rows, {"stock_universe:market_cap:mega_cap": 5})[2] == {
        "stock_universe:market_cap:mega_cap": []}


def test_membership_heals_when_history_is_missing_for_an_unchanged_universe():
    built = [entry("mega_cap", stock_obj("A"))]
    p = plan([stored("mega_cap", stock_obj("A"))], built, active_symbols=ACTIVE)
    assert not p.changes and not p.upserts
    rows = [stored("mega_cap", stock_obj("A"))]
    _, _, drifted = history_changes(p, built, rows, {})  # no open rows although the universe has a member
    assert membership_changes(drifted, {}) == ([("stock_universe:market_cap:mega_cap", "A")], [])
    assert history_changes(p, built, rows, {"stock_universe:market_cap:mega_cap": 1}) == ([], [], {})


def test_new_ipos_are_the_symbols_added_to_the_ipo_universe():
    old = stored("recent_ipos", stock_obj("A"), family=IPOS, name="ipos")
    new = entry("recent_ipos", stock_obj("N", "A"), family=IPOS, name="ipos")
    p = plan([old], [new], active_symbols=frozenset("AN"))
    assert p.new_ipos == ("N",)
    assert {(c.symbol, c.reason) for c in p.changes} == {("N", "new listing")}


def test_ticker_arrays_and_empty_universes():
    etf = Entry("etf_universe", "Growth ETFs", "etf_growth", ["VUG"], "etf_categories")
    empty = Entry("themes", "Crypto", "list", [], "themes")
    p = plan([], [etf, empty], active_symbols=frozenset({"VUG"}))
    assert {(c.universe, c.symbol, c.action) for c in p.changes} == {
        ("etf_universe:Growth ETFs:etf_growth", "VUG", "added"), ("themes:Crypto:list", None, "created")}


def test_drift_names_every_universe_whose_open_history_does_not_number_its_stored_members():
    from tickstockpl.sync.inputs import drift
    from tickstockpl.sync.ownership import FoundRow

    found = (FoundRow("stock_universe", "market_cap", "mega_cap", {"count": 2, "stocks": [{"ticker": "A"}, {"ticker": "B"}]},
                      "market_cap"),
             FoundRow("themes", "AI", "list", ["A"], "themes"))
    assert drift(found, {"stock_universe:market_cap:mega_cap": 2, "themes:AI:list": 1}) == set()
    assert drift(found, {"stock_universe:market_cap:mega_cap": 1, "themes:AI:list": 1}) == {
        "stock_universe:market_cap:mega_cap"}
    assert drift(found, {}) == {"stock_universe:market_cap:mega_cap", "themes:AI:list"}  # stored, no history
    assert drift((), {"themes:Gone:list": 3}) == {"themes:Gone:list"}  # history, no stored row


def test_history_without_some_universes_is_the_whole_history_of_the_others():
    """A part's universes, sent ahead with their history, are left out of the full plan's (`without`): the
    rest is exactly the whole history minus theirs, drifted universes included."""
    rows = [stored("mega_cap", stock_obj("A", "B")), stored("large_cap", stock_obj("C")), stored("gone", stock_obj("D"))]
    built = [entry("mega_cap", stock_obj("A", "E")), entry("large_cap", stock_obj("C", "F")), entry("new", stock_obj("G"))]
    p = plan(rows, built, active_symbols=ACTIVE)
    counts = {"stock_universe:market_cap:mega_cap": 2, "stock_universe:market_cap:large_cap": 5,  # drifted
              "stock_universe:market_cap:gone": 1}
    open_rows = {"stock_universe:market_cap:large_cap": frozenset("CXYZW")}
    whole = with_history(p, built, rows, counts, open_rows)
    assert whole.membership_open and whole.membership_close
    for left_out in ({"stock_universe:market_cap:mega_cap"}, {"stock_universe:market_cap:large_cap"},
                     {"stock_universe:market_cap:gone", "stock_universe:market_cap:new"}):
        part = with_history(p, built, rows, counts, open_rows, without=frozenset(left_out))
        assert part.membership_open == tuple(x for x in whole.membership_open if x[0] not in left_out)
        assert part.membership_close == tuple(x for x in whole.membership_close if x[0] not in left_out)
        assert part.universes == whole.universes and part.deletes == whole.deletes  # the plan itself unchanged
