"""Decisions over Polars DataFrames, through the Arrow C stream interface (no copies of
the input, no per-row Python)."""

from __future__ import annotations

from typing import Any, Optional

import polars as pl

from . import Deck, diff_arrow


def _frame(df: Any) -> pl.DataFrame:
    if isinstance(df, pl.LazyFrame):
        return df.collect()
    return df


def decide(
    df: Any, deck: Deck, scene: str, instance: str, *, now: Any = None, threads: Optional[int] = None
) -> pl.DataFrame:
    """``df``'s columns followed by the decision columns (see ``Deck.decide_arrow``)."""
    return pl.from_arrow(deck.decide_arrow(scene, instance, _frame(df), now=now, threads=threads))


def diff(
    df: Any, old: Deck, new: Deck, scene: str, instance: str, *, now: Any = None, threads: Optional[int] = None
) -> pl.DataFrame:
    """``df``'s columns, ``old.*`` and ``new.*`` decision columns and ``changed``."""
    return pl.from_arrow(diff_arrow(old, new, scene, instance, _frame(df), now=now, threads=threads))


__all__ = ["decide", "diff"]
