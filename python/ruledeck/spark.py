"""Decisions over PySpark DataFrames, through ``mapInArrow``.

The deck travels to the executors as its bundle bytes and is compiled once per Python
worker (cached by the bundle's content); each Arrow batch Spark hands the worker is decided
in Rust. Column names follow ``Deck.decide_arrow``: keys (``uid``), tags by full name
(``user.risk_score`` -- refer to them in Spark with backticks), ``now``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterator

import pyarrow as pa

from . import Deck, diff_arrow

# Decks by the SHA-256 of their bundle, least recently used first (dicts keep insertion order).
_DECKS: dict = {}
_KEEP_DECKS = 8

# Spark resolves a name with a dot as a struct field, even inside mapInArrow's own plan, so
# columns cross mapInArrow with their dots replaced, and get them back on both sides.
_DOT = "__ruledeck_dot__"


def _hide_dots(names: list) -> list:
    return [n.replace(".", _DOT) for n in names]


def _show_dots(names: list) -> list:
    return [n.replace(_DOT, ".") for n in names]


def _map(df: Any, run, out: pa.Schema) -> Any:
    """``mapInArrow`` over ``df`` with dotted names hidden from Spark's analyzer."""
    hidden = df.toDF(*_hide_dots(df.columns))
    schema = pa.schema([f.with_name(n) for f, n in zip(out, _hide_dots(out.names))])

    def wrapped(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        shown = (b.rename_columns(_show_dots(b.schema.names)) for b in batches)
        for batch in run(shown):
            yield batch.rename_columns(_hide_dots(batch.schema.names))

    result = hidden.mapInArrow(wrapped, _spark_schema(schema))
    return result.toDF(*_show_dots(result.columns))


def _deck(bundle: bytes) -> Deck:
    """The deck of ``bundle``, read once per Python worker process. A long-lived worker
    that meets many decks keeps the last ``_KEEP_DECKS`` of them."""
    key = hashlib.sha256(bundle).digest()
    deck = _DECKS.pop(key, None)
    if deck is None:
        deck = Deck.from_bundle(bundle)
    _DECKS[key] = deck  # most recently used last
    while len(_DECKS) > _KEEP_DECKS:
        del _DECKS[next(iter(_DECKS))]
    return deck


def _arrow_schema(df: Any) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema)


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def decide(df: Any, deck: Deck, scene: str, instance: str, *, now: Any = None, threads: int = 1) -> Any:
    """Decides ``scene.instance`` for every row of ``df``.

    Returns a DataFrame of ``df``'s columns followed by the decision fields, ``strategy``,
    ``experiment``, ``group``, ``bucket`` and ``error`` (see ``Deck.decide_arrow``). The
    column types are checked here, on the driver, before any task runs. ``threads``: Rust
    threads per Spark task (Spark already runs one task per core).
    """
    out = deck.output_schema(scene, instance, _arrow_schema(df))
    bundle = deck.to_bundle()

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        d = _deck(bundle)
        for batch in batches:
            yield d.decide_arrow(scene, instance, batch, now=now, threads=threads)

    return _map(df, run, out)


def diff(df: Any, old: Deck, new: Deck, scene: str, instance: str, *, now: Any = None, threads: int = 1) -> Any:
    """What publishing ``new`` over ``old`` changes, row by row.

    Returns ``df``'s columns, ``old.*`` and ``new.*`` decision columns and ``changed``
    (decision, strategy, experiment, group or error differ, as ``ruledeck diff --inputs``
    counts). ``df.filter("changed").groupBy("`old.strategy`", "`new.strategy`").count()``
    is the impact summary.
    """
    schema = _arrow_schema(df)
    empty = pa.RecordBatch.from_pylist([], schema=schema)
    out = diff_arrow(old, new, scene, instance, empty).schema
    old_bundle, new_bundle = old.to_bundle(), new.to_bundle()

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        o, n = _deck(old_bundle), _deck(new_bundle)
        for batch in batches:
            yield diff_arrow(o, n, scene, instance, batch, now=now, threads=threads)

    return _map(df, run, out)


__all__ = ["decide", "diff"]

