"""Python decisions equal `ruledeck eval --inputs` on the example deck, line for line:
`Deck.decide` on dicts, and `Deck.decide_arrow` on the same requests as Arrow columns."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

import ruledeck
from conftest import DECK, INPUTS, TAGS, request_table, result_rows


def cli_eval(cli, scene, instance, *extra):
    run = cli("eval", str(DECK), "--scene", scene, "--instance", instance, "--tags", str(TAGS), "--inputs", str(INPUTS), *extra)
    assert run.returncode in (0, 3), run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def instances():
    return ruledeck.compile([str(DECK)]).instances()


@pytest.mark.parametrize("scene,instance", instances())
def test_decide_equals_cli_eval(cli, deck, requests, scene, instance):
    expected = cli_eval(cli, scene, instance)
    assert len(expected) == len(requests)
    decided = 0
    for request, want in zip(requests, expected):
        if "error" in want:
            with pytest.raises(ruledeck.RequestError) as e:
                deck.decide(scene, instance, request, tags=str(TAGS))
            assert str(e.value) == want["error"]
        else:
            assert deck.decide(scene, instance, request, tags=str(TAGS)) == want
            decided += want["decision"] is not None
    # The tags as a dict give the same results as the file.
    tags = json.loads(TAGS.read_text())
    ok = [(r, w) for r, w in zip(requests, expected) if "error" not in w]
    assert [deck.decide(scene, instance, r, tags=tags) for r, _ in ok] == [w for _, w in ok]


def test_example_deck_decides_something(cli, requests):
    results = cli_eval(cli, "payment", "installments")
    assert sum(1 for r in results if r.get("decision")) >= 3, "the parity test must cover real decisions"
    assert any(r.get("group") for r in results), "and experiment groups"


def test_explain_equals_cli(cli, deck, requests):
    want = cli_eval(cli, "payment", "installments", "--explain")
    got = [deck.decide("payment", "installments", r, tags=str(TAGS), explain=True) for r in requests]
    assert got == want


APP_VERSIONS = ["7.4.1", "6.2.0", ""]


def scene_requests(deck, scene, instance, requests, tags):
    """The example requests shaped for `scene`: only its keys, pass-through tags and `now`,
    with keys the file lacks (`skuid`) and pass-through tags (`ctx.app_version`) filled in
    from the tags file's entities, in a fixed rotation; every user meets every item."""
    columns = deck.input_columns(scene, instance)
    takes = {c[0] for c in columns if c[1] in ("key", "pass")} | {"now"}
    items = list(tags["item"])
    out = []
    for i, r in enumerate(requests):
        for j in range(len(items) if "skuid" in takes else 1):
            req = {k: v for k, v in r.items() if k in takes}
            if "skuid" in takes:
                req["skuid"] = items[j]
            if "ctx.app_version" in takes:
                req["ctx.app_version"] = APP_VERSIONS[(i + j) % len(APP_VERSIONS)]
            out.append(req)
    return out


@pytest.mark.parametrize("scene,instance", instances())
def test_decide_arrow_equals_cli_eval(cli, deck, requests, tags, tmp_path, scene, instance):
    shaped = scene_requests(deck, scene, instance, requests, tags)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in shaped))
    run = cli("eval", str(DECK), "--scene", scene, "--instance", instance, "--tags", str(TAGS), "--inputs", str(path))
    assert run.returncode in (0, 3), run.stderr
    expected = [json.loads(line) for line in run.stdout.splitlines()]
    assert sum(1 for w in expected if w.get("decision")) > 0, "the comparison must cover real decisions"
    # Dicts, one by one.
    for r, w in zip(shaped, expected):
        if "error" not in w:
            assert deck.decide(scene, instance, r, tags=str(TAGS)) == w
    # The same requests as Arrow columns, with the tags file as tag columns.
    table = request_table(deck, scene, instance, shaped, tags)
    assert table.num_rows == len(expected)
    for threads in (1, 3):
        out = deck.decide_arrow(scene, instance, table, threads=threads)
        assert isinstance(out, pa.Table)
        assert result_rows(out, deck, scene, instance) == [{k: v for k, v in w.items() if k != "line"} for w in expected]
        # The input columns come back unchanged, first.
        assert out.select(table.column_names).equals(table)


def test_store_decks_stamp_release_and_version_like_eval_store(cli, tmp_path, requests):
    store = tmp_path / "store"
    run = cli("release", str(DECK), "--store", str(store), "--tags", str(TAGS), "--note", "py", env={"RULEDECK_NOW": "2026-12-01T10:00:00Z"})
    assert run.returncode == 0, run.stderr
    s = ruledeck.Store(store)
    assert s.current_number() == 1
    want = cli("eval", "--store", str(store), "--scene", "payment", "--instance", "installments", "--tags", str(TAGS), "--inputs", str(INPUTS))
    want = [json.loads(line) for line in want.stdout.splitlines()]
    for deck in (s.current(), s.release(1)):
        assert deck.release == 1
        got = [deck.decide("payment", "installments", r, tags=str(TAGS)) for r in requests]
        assert got == want
    with pytest.raises(ruledeck.StoreError, match="2"):
        s.release(2)
    with pytest.raises(ruledeck.StoreError):
        ruledeck.Store(tmp_path / "nope")


def test_bundles_round_trip(deck, requests):
    again = ruledeck.Deck.from_bundle(deck.to_bundle())
    assert again.to_bundle() == deck.to_bundle()
    assert [again.decide("payment", "installments", r, tags=str(TAGS)) for r in requests] == [
        deck.decide("payment", "installments", r, tags=str(TAGS)) for r in requests
    ]


def test_cli_bundle_reads(cli, tmp_path, deck):
    out = tmp_path / "deck.rdb"
    assert cli("build", str(DECK), "-o", str(out)).returncode == 0
    built = ruledeck.Deck.from_bundle(out.read_bytes())
    assert built.instances() == deck.instances()


@pytest.mark.parametrize("scene,instance", instances())
def test_rows_never_see_the_last_rows_values(deck, requests, tags, scene, instance):
    """With `now=` and no `now` column one request is reused row after row (started over,
    not cleared), so every row must set everything again: here every other row's tag and
    pass-through cells are null, and each row of the whole table must equal the same row
    decided alone."""
    import pyarrow.compute as pc

    shaped = scene_requests(deck, scene, instance, requests, tags)
    table = request_table(deck, scene, instance, shaped, tags).drop_columns(["now"])
    # Row by row, doubled: a row with its values, then the same row with nulls.
    table = pa.concat_tables([table, table]).take(
        [i for r in range(table.num_rows) for i in (r, r + table.num_rows)]
    )
    odd = pa.array([i % 2 == 1 for i in range(table.num_rows)])
    roles = {name: role for name, role, _, _ in deck.input_columns(scene, instance)}
    for name in table.column_names:
        if roles[name] in ("pass", "tag"):
            column = table.column(name)
            table = table.set_column(
                table.column_names.index(name), name, pc.if_else(odd, pa.nulls(len(column), column.type), column)
            )
    now = 1_796_000_000
    whole = deck.decide_arrow(scene, instance, table, now=now, threads=1)
    alone = pa.concat_tables(
        [deck.decide_arrow(scene, instance, table.slice(i, 1), now=now, threads=1) for i in range(table.num_rows)]
    )
    assert whole.num_rows == table.num_rows
    assert whole.to_pylist() == alone.to_pylist()
    assert any(row["strategy"] for row in whole.to_pylist()[0::2]), "some rows with values are decided"
