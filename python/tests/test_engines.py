"""Diffs, and the Polars and DuckDB helpers over Arrow streams."""

from __future__ import annotations

import duckdb
import polars as pl
import pyarrow as pa
import pytest

import ruledeck
import ruledeck.duckdb
import ruledeck.polars
from conftest import DECK, TAGS, request_table

OLD = """
entity user key uid
tag user.risk_score: int from "risk"
tag ctx.channel: enum(app, h5) passthrough
scene payment {
  keys uid
  passes ctx.channel
  instance installments -> { count: int } {
    strategy boost when user.risk_score < 30 and ctx.channel == app => { count: 6 }
    default => { count: 1 }
  }
}
"""
NEW = OLD.replace("< 30", "< 40")

N = 20_000


@pytest.fixture(scope="module")
def data():
    return pa.table(
        {
            "uid": [f"u-{i}" for i in range(N)],
            "ctx.channel": ["app" if i % 4 else "h5" for i in range(N)],
            "user.risk_score": pa.array([None if i % 97 == 0 else i % 100 for i in range(N)], pa.int64()),
        }
    )


def test_diff_counts_what_changes(data):
    old, new = ruledeck.compile({"p.rule": OLD}), ruledeck.compile({"p.rule": NEW})
    out = ruledeck.diff_arrow(old, new, "payment", "installments", data, now=0)
    changed = out.column("changed").to_pylist()
    rows = data.to_pylist()
    want = [
        r["ctx.channel"] == "app" and r["user.risk_score"] is not None and 30 <= r["user.risk_score"] < 40 for r in rows
    ]
    assert changed == want and any(want)
    assert out.column("old.strategy").to_pylist()[35] == "default"
    assert out.column("new.strategy").to_pylist()[35] == "boost"
    assert out.column("new.count").to_pylist()[35] == 6
    # Each side equals its own decide_arrow.
    assert out.column("old.count").equals(old.decide_arrow("payment", "installments", data, now=0).column("count"))
    # The same deck changes nothing.
    same = ruledeck.diff_arrow(old, old, "payment", "installments", data, now=0)
    assert not any(same.column("changed").to_pylist())


def test_diff_agrees_with_decide_dicts_on_the_example_deck(deck, requests, tags):
    """diff_arrow of the example deck against a copy whose `low_risk` bar moved: each row's
    old and new strategy equal `Deck.decide` on the same request with each deck, and
    `changed` is exactly where they differ."""
    table = request_table(deck, "payment", "installments", requests, tags)
    files = {p.name: p.read_text() for p in sorted(DECK.glob("*.rule"))}
    assert "user.risk_score < 30" in files["rules.rule"], "the example deck's low_risk bar moved; update this test"
    files["rules.rule"] = files["rules.rule"].replace("user.risk_score < 30", "user.risk_score < 5")
    moved = ruledeck.compile(files)
    out = ruledeck.diff_arrow(deck, moved, "payment", "installments", table)
    shaped = [r for r in requests if "uid" in r]
    assert out.num_rows == table.num_rows == len(shaped)
    old = [deck.decide("payment", "installments", r, tags=str(TAGS))["strategy"] for r in shaped]
    new = [moved.decide("payment", "installments", r, tags=str(TAGS))["strategy"] for r in shaped]
    assert out.column("old.strategy").to_pylist() == old
    assert out.column("new.strategy").to_pylist() == new
    assert out.column("changed").to_pylist() == [a != b for a, b in zip(old, new)]
    assert any(a != b for a, b in zip(old, new)), "the comparison must cover a changed row"


def test_polars_helper(data):
    deck = ruledeck.compile({"p.rule": OLD})
    df = pl.from_arrow(data)
    got = ruledeck.polars.decide(df, deck, "payment", "installments", now=0)
    assert isinstance(got, pl.DataFrame)
    want = deck.decide_arrow("payment", "installments", data, now=0)
    assert got["strategy"].to_list() == want.column("strategy").to_pylist()
    assert got["count"].to_list() == want.column("count").to_pylist()
    # Lazy frames are collected; polars' string_view columns are read as they are.
    lazy = ruledeck.polars.decide(df.lazy(), deck, "payment", "installments", now=0)
    assert lazy["bucket"].to_list() == got["bucket"].to_list()
    d = ruledeck.polars.diff(df, deck, ruledeck.compile({"p.rule": NEW}), "payment", "installments", now=0)
    assert d["changed"].sum() == sum(
        1 for r in data.to_pylist() if r["ctx.channel"] == "app" and r["user.risk_score"] is not None and 30 <= r["user.risk_score"] < 40
    )


def test_duckdb_helper(data):
    deck = ruledeck.compile({"p.rule": OLD})
    con = duckdb.connect()
    con.register("users", data)
    rel = con.sql('select uid, "ctx.channel", "user.risk_score" from users')
    decided = ruledeck.duckdb.decide(rel, deck, "payment", "installments", now=0)
    assert isinstance(decided, pa.Table)
    counts = dict(con.sql("select strategy, count(*) from decided group by strategy").fetchall())
    want = deck.decide_arrow("payment", "installments", data, now=0).column("strategy").to_pylist()
    assert counts == {s: want.count(s) for s in set(want)}
    d = ruledeck.duckdb.diff(rel, deck, ruledeck.compile({"p.rule": NEW}), "payment", "installments", now=0)
    moved = ruledeck.diff_arrow(deck, ruledeck.compile({"p.rule": NEW}), "payment", "installments", data, now=0)
    expected = sum(moved.column("changed").to_pylist())
    assert expected > 0
    assert con.sql("select count(*) from d where changed").fetchall()[0][0] == expected
