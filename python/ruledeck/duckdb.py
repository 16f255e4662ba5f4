"""Decisions over DuckDB query results, through Arrow record batch streams.

Query the requests with SQL, decide them in Rust, and query the decisions again:

    rel = con.sql("select uid, orderid, channel as \\"ctx.channel\\" from orders")
    decided = ruledeck.duckdb.decide(rel, deck, "payment", "installments")
    con.sql("select strategy, count(*) from decided group by all")
"""

from __future__ import annotations

from typing import Any, Optional

import pyarrow as pa

from . import Deck, diff_arrow

_BATCH_ROWS = 1_000_000


def _stream(relation: Any) -> Any:
    """An Arrow record batch stream of a DuckDB relation (or of anything Arrow already):
    DuckDB 1.4+ names it `to_arrow_reader`, earlier releases `fetch_arrow_reader`."""
    for name in ("to_arrow_reader", "fetch_arrow_reader"):
        if hasattr(relation, name):
            return getattr(relation, name)(_BATCH_ROWS)
    return relation


def decide(
    relation: Any, deck: Deck, scene: str, instance: str, *, now: Any = None, threads: Optional[int] = None
) -> pa.Table:
    """The relation's rows with their decision columns, as a pyarrow Table DuckDB can
    query by name (see ``Deck.decide_arrow``)."""
    return deck.decide_arrow(scene, instance, _stream(relation), now=now, threads=threads)


def diff(
    relation: Any, old: Deck, new: Deck, scene: str, instance: str, *, now: Any = None, threads: Optional[int] = None
) -> pa.Table:
    """The relation's rows, ``old.*`` and ``new.*`` decision columns and ``changed``."""
    return diff_arrow(old, new, scene, instance, _stream(relation), now=now, threads=threads)


__all__ = ["decide", "diff"]
