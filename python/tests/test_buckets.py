"""The A/B bucket of every row equals the normative hash and the CLI's, over 100,000 units."""

from __future__ import annotations

import json

import mmh3
import pyarrow as pa

import ruledeck

UNITS = 100_000

DECK = """
entity user key uid
tag ctx.channel: enum(app, h5) passthrough
layer hero by uid
scene s {
  keys uid
  passes ctx.channel
  instance plain -> { n: int } {
    strategy split when ctx.channel == app {
      experiment exp_a by uid salt "welcome-2026q4" {
        a 37.5% => { n: 1 }
        b 62.5% => { n: 2 }
      }
    }
  }
  instance layered -> { n: int } {
    strategy top {
      experiment exp_b by uid in hero 10%..60% {
        x 50% => { n: 3 }
        y 50% => { n: 4 }
      }
    }
  }
}
"""


def bucket(salt: str, unit: str) -> int:
    """docs/language.md §5, with the independent mmh3 package."""
    return mmh3.hash(f"{salt}:{unit}".encode("utf-8"), 0, signed=False) % 10000


def test_bucket_of_every_row_equals_normative_hash_and_cli(cli, tmp_path):
    deck = ruledeck.compile({"ab.rule": DECK})
    units = [f"u-{i}" if i % 3 else str(i) for i in range(UNITS)]  # text and digit-only ids
    table = pa.table({"uid": units, "ctx.channel": ["app"] * UNITS})
    out = deck.decide_arrow("s", "plain", table, now=0)
    buckets = out.column("bucket").to_pylist()
    want = [bucket("welcome-2026q4", u) for u in units]
    assert buckets == want
    groups = out.column("group").to_pylist()
    assert groups == ["a" if b < 3750 else "b" for b in want]
    assert set(out.column("error").to_pylist()) == {None}

    # The same units through `ruledeck eval --inputs`.
    (tmp_path / "ab.rule").write_text(DECK)
    lines = "".join(json.dumps({"uid": u, "ctx.channel": "app", "now": 0}) + "\n" for u in units)
    (tmp_path / "in.jsonl").write_text(lines)
    run = cli("eval", str(tmp_path / "ab.rule"), "--scene", "s", "--instance", "plain", "--inputs", str(tmp_path / "in.jsonl"))
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["bucket"] for line in run.stdout.splitlines()] == buckets


def test_layers_gate_by_the_layer_bucket_and_split_by_the_experiment_bucket():
    deck = ruledeck.compile({"ab.rule": DECK})
    units = [f"u-{i}" for i in range(20_000)]
    out = deck.decide_arrow("s", "layered", pa.table({"uid": units, "ctx.channel": ["h5"] * len(units)}), now=0)
    for u, b, g in zip(units, out.column("bucket").to_pylist(), out.column("group").to_pylist()):
        in_layer = 1000 <= bucket("hero", u) < 6000
        if in_layer:
            assert b == bucket("exp_b", u)
            assert g == ("x" if b < 5000 else "y")
        else:
            assert g is None


def test_integer_key_columns_bucket_as_their_decimal_text():
    deck = ruledeck.compile({"ab.rule": DECK})
    ids = list(range(-500, 500))
    as_int = deck.decide_arrow("s", "plain", pa.table({"uid": pa.array(ids, pa.int64()), "ctx.channel": ["app"] * len(ids)}), now=0)
    as_text = deck.decide_arrow("s", "plain", pa.table({"uid": [str(i) for i in ids], "ctx.channel": ["app"] * len(ids)}), now=0)
    assert as_int.column("bucket").to_pylist() == as_text.column("bucket").to_pylist() == [bucket("welcome-2026q4", str(i)) for i in ids]
