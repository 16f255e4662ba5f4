"""Bad inputs raise clear Python exceptions naming the place; they never crash the
interpreter. Row-level refusals are reported per row, as `eval` reports them per line."""

from __future__ import annotations

import pyarrow as pa
import pytest

import ruledeck

SRC = """
entity user key uid
tag user.risk_score: int from "risk"
tag user.segments: list<text> from "profile"
tag ctx.channel: enum(app, h5) passthrough
rule user low_risk = user.risk_score < 30
scene payment {
  keys uid
  passes ctx.channel
  instance installments -> { count: int } {
    strategy boost when low_risk and ctx.channel == app => { count: 6 }
    strategy segment when user.segments contains "y" => { count: 3 }
    default => { count: 1 }
  }
}
"""


@pytest.fixture(scope="module")
def deck():
    return ruledeck.compile({"payment.rule": SRC})


def table(**columns):
    return pa.table(columns)


def test_compile_errors_carry_rendered_and_structured_diagnostics():
    with pytest.raises(ruledeck.CompileError) as e:
        ruledeck.compile({"bad.rule": "rule user r = user.nope > 1"})
    assert "--> bad.rule:1:1" in str(e.value)
    diags = e.value.diagnostics
    assert isinstance(diags, list) and diags
    assert {"code", "severity", "message", "file", "line", "column"} <= set(diags[0])
    assert diags[0]["file"] == "bad.rule" and diags[0]["severity"] == "error"
    assert isinstance(e.value, ruledeck.RuledeckError)


def test_compile_refuses_non_utf8_and_missing_paths(tmp_path):
    with pytest.raises(ruledeck.CompileError) as e:
        ruledeck.compile({"x.rule": b"tag \xff"})
    assert e.value.diagnostics[0]["code"] == "E0001"
    with pytest.raises(ValueError, match="nope"):
        ruledeck.compile([str(tmp_path / "nope")])
    with pytest.raises(ValueError, match="no .rule files"):
        ruledeck.compile(tmp_path)
    with pytest.raises(TypeError):
        ruledeck.compile({"x.rule": 3})


def test_corrupt_bundles_raise(deck):
    with pytest.raises(ruledeck.BundleError):
        ruledeck.Deck.from_bundle(b"not a bundle")
    data = bytearray(deck.to_bundle())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(ruledeck.BundleError):
        ruledeck.Deck.from_bundle(bytes(data))


def test_unknown_scene_and_instance(deck):
    t = table(uid=["u-1"], **{"ctx.channel": ["app"]})
    with pytest.raises(ruledeck.RequestError, match="unknown scene `paymnt`; did you mean `payment`"):
        deck.decide_arrow("paymnt", "installments", t)
    with pytest.raises(ruledeck.RequestError, match="scene `payment` has no instance `nope`"):
        deck.decide_arrow("payment", "nope", t)
    with pytest.raises(ruledeck.RequestError, match="unknown scene"):
        deck.decide("paymnt", "installments", {"uid": "u-1", "ctx.channel": "app"})


def test_missing_key_column(deck):
    with pytest.raises(ruledeck.RequestError, match="missing key column `uid`"):
        deck.decide_arrow("payment", "installments", table(**{"ctx.channel": ["app"]}))


def test_wrong_column_types_name_the_column(deck):
    with pytest.raises(ruledeck.RequestError, match="key column `uid` is double"):
        deck.decide_arrow("payment", "installments", table(uid=[1.5], **{"ctx.channel": ["app"]}))
    with pytest.raises(ruledeck.RequestError, match=r"column `ctx.channel` is int64, but pass-through tag `ctx.channel` is enum\(app, h5\)"):
        deck.decide_arrow("payment", "installments", table(uid=["u"], **{"ctx.channel": [1]}))
    with pytest.raises(ruledeck.RequestError, match="column `user.risk_score` is string, but tag `user.risk_score` is int"):
        deck.decide_arrow("payment", "installments", table(uid=["u"], **{"ctx.channel": ["app"], "user.risk_score": ["12"]}))
    with pytest.raises(ruledeck.RequestError, match="column `user.segments` is string, but tag `user.segments` is list<text>"):
        deck.decide_arrow("payment", "installments", table(uid=["u"], **{"ctx.channel": ["app"], "user.segments": ["a"]}))
    with pytest.raises(ruledeck.RequestError, match="column `now` is bool"):
        deck.decide_arrow("payment", "installments", table(uid=["u"], **{"ctx.channel": ["app"], "now": [True]}))
    cat = pa.array(["app"]).dictionary_encode()
    with pytest.raises(ruledeck.RequestError, match="`ctx.channel`"):
        deck.decide_arrow("payment", "installments", pa.table({"uid": ["u"], "ctx.channel": cat}))


def test_unknown_columns_are_refused_with_a_suggestion(deck):
    with pytest.raises(ruledeck.RequestError, match="column `user.risk_scor` is not a key.*did you mean `user.risk_score`"):
        deck.decide_arrow("payment", "installments", table(uid=["u"], **{"ctx.channel": ["app"], "user.risk_scor": [1]}))
    with pytest.raises(ruledeck.RequestError, match="input column `strategy` has the name of an output column"):
        ruledeck.compile({"p.rule": SRC.replace("key uid", "key strategy").replace("keys uid", "keys strategy")}).decide_arrow(
            "payment", "installments", table(strategy=["u"], **{"ctx.channel": ["app"]})
        )


def test_not_arrow_data(deck):
    with pytest.raises(TypeError, match="expected Arrow data"):
        deck.decide_arrow("payment", "installments", {"uid": ["u"]})
    with pytest.raises(ruledeck.RequestError, match="no record batches"):
        deck.decide_arrow("payment", "installments", [])


def test_row_refusals_go_to_the_error_column(deck):
    t = pa.table(
        {
            "uid": ["u-1", None, "u-3", "u-4"],
            "ctx.channel": ["app", "app", "web", None],
            "user.risk_score": [10, 10, 10, 10],
            "now": ["2026-11-21T08:00:00Z", None, None, "yesterday"],
        }
    )
    out = deck.decide_arrow("payment", "installments", t, now=0)
    errors = out.column("error").to_pylist()
    assert errors[0] is None and errors[1] == "missing key `uid`"
    assert "ctx.channel" in errors[2] and "yesterday" in errors[3]
    assert out.column("count").to_pylist() == [6, None, None, None]
    assert out.column("strategy").to_pylist() == ["boost", None, None, None]


def test_decide_refusals_match_the_request_error_text(deck):
    with pytest.raises(ruledeck.RequestError, match="missing key `uid`"):
        deck.decide("payment", "installments", {"ctx.channel": "app"})
    with pytest.raises(ruledeck.RequestError, match="`now` must be an RFC 3339 time"):
        deck.decide("payment", "installments", {"uid": "u", "ctx.channel": "app", "now": "soon"})
    with pytest.raises(TypeError, match="input must be a dict"):
        deck.decide("payment", "installments", ["uid"])
    with pytest.raises(TypeError, match=r"input\['uid'\]|cannot use"):
        deck.decide("payment", "installments", {"uid": object(), "ctx.channel": "app"})
    with pytest.raises(ValueError, match="tags"):
        deck.decide("payment", "installments", {"uid": "u", "ctx.channel": "app"}, tags={"user": 3})


def test_null_and_wrong_typed_tag_values_are_missing(deck):
    t = pa.table(
        {
            "uid": ["a", "b", "c", "d"],
            "ctx.channel": ["app"] * 4,
            "user.risk_score": pa.array([10, None, 50, 50], pa.int32()),
            "user.segments": pa.array([["x"], None, ["y", None], ["y"]], pa.list_(pa.string())),
        }
    )
    out = deck.decide_arrow("payment", "installments", t, now=0)
    # Missing risk is unknown, and unknown never grants: row b falls through. Row c's list
    # holds a null element, so it cannot be a list<text>: missing, and `segment` does not
    # grant either; row d's list is whole and does.
    assert out.column("strategy").to_pylist() == ["boost", "default", "default", "segment"]
    assert out.column("error").to_pylist() == [None] * 4


def test_string_kinds_and_batches_give_the_same_decisions(deck):
    uids = [f"u-{i}" for i in range(5000)]
    risk = [i % 60 for i in range(5000)]
    chan = ["app" if i % 3 else "h5" for i in range(5000)]
    results = []
    for kind in (pa.string(), pa.large_string(), pa.string_view()):
        t = pa.table({"uid": pa.array(uids, kind), "ctx.channel": pa.array(chan, kind), "user.risk_score": risk})
        results.append(deck.decide_arrow("payment", "installments", t, now=0).select(["count", "strategy"]))
    assert results[0].equals(results[1]) and results[0].equals(results[2])
    batch = pa.table({"uid": uids, "ctx.channel": chan, "user.risk_score": risk}).to_batches()[0]
    one = deck.decide_arrow("payment", "installments", batch, now=0)
    assert isinstance(one, pa.RecordBatch)
    assert pa.Table.from_batches([one]).select(["count", "strategy"]).equals(results[0])
    reader = pa.RecordBatchReader.from_batches(batch.schema, [batch.slice(0, 100), batch.slice(100)])
    assert deck.decide_arrow("payment", "installments", reader, now=0).select(["count", "strategy"]).equals(results[0])
    assert deck.decide_arrow("payment", "installments", [batch], now=0).num_rows == 5000


def test_threads_do_not_change_results(deck):
    n = 50_000
    t = pa.table({"uid": [f"u-{i}" for i in range(n)], "ctx.channel": ["app"] * n, "user.risk_score": [i % 50 for i in range(n)]})
    one = deck.decide_arrow("payment", "installments", t, now=0, threads=1)
    many = deck.decide_arrow("payment", "installments", t, now=0, threads=7)
    assert one.equals(many)


def test_output_schema_matches_decide_arrow(deck):
    t = pa.table({"uid": ["u"], "ctx.channel": ["app"], "user.risk_score": [1]})
    out = deck.decide_arrow("payment", "installments", t, now=0)
    assert deck.output_schema("payment", "installments", t.schema) == out.schema
    assert out.schema.field("bucket").type == pa.int32()


def test_fields_named_like_outcome_columns_are_prefixed():
    src = SRC.replace("{ count: int }", "{ strategy: text, count: int }").replace(
        "{ count: 6 }", '{ strategy: "x", count: 6 }').replace("{ count: 3 }", '{ strategy: "z", count: 3 }').replace(
        "{ count: 1 }", '{ strategy: "y", count: 1 }')
    d = ruledeck.compile({"p.rule": src})
    out = d.decide_arrow("payment", "installments", pa.table({"uid": ["u"], "ctx.channel": ["app"]}), now=0)
    assert out.column("decision.strategy").to_pylist() == ["y"]
    assert out.column("strategy").to_pylist() == ["default"]


def test_a_null_pass_through_value_is_not_given(deck):
    t = pa.table({"uid": ["u-1"], "ctx.channel": pa.array([None], pa.string())})
    out = deck.decide_arrow("payment", "installments", t, now=0)
    assert out.column("error").to_pylist() == ["missing pass-through tag `ctx.channel`"]
    with pytest.raises(ruledeck.RequestError, match="missing pass-through tag `ctx.channel`"):
        deck.decide("payment", "installments", {"uid": "u-1"})


def test_a_list_of_batches_must_share_their_columns(deck):
    a = pa.record_batch({"uid": ["u-1"], "ctx.channel": ["app"], "user.risk_score": [10]})
    b = pa.record_batch({"uid": ["u-2"], "ctx.channel": ["app"], "user.risk_score": [1.5]})
    c = pa.record_batch({"uid": ["u-2"], "ctx.channel": ["app"]})
    with pytest.raises(ruledeck.RequestError, match=r"record batch 1 .*`user.risk_score` is double, not int64"):
        deck.decide_arrow("payment", "installments", [a, b], now=0)
    with pytest.raises(ruledeck.RequestError, match=r"record batch 2 .*`user.risk_score` is missing"):
        deck.decide_arrow("payment", "installments", [a, a, c], now=0)
    assert deck.decide_arrow("payment", "installments", [a, a], now=0).num_rows == 2
