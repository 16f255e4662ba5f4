"""ruledeck: decisions of a compiled ruledeck deck, from Python.

``compile`` a deck (or load one from a bundle or a release store), then decide one request
as a dict with ``Deck.decide`` -- the same result object ``ruledeck eval`` prints -- or every
row of Arrow data with ``Deck.decide_arrow``, in Rust, on all cores, without the GIL.
``ruledeck.spark``, ``ruledeck.polars`` and ``ruledeck.duckdb`` wrap the Arrow path for
those engines.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Union

from ._ruledeck import (
    BundleError,
    CompileError,
    Deck,
    RequestError,
    RuledeckError,
    Store,
    StoreError,
    diff_arrow,
)
from ._ruledeck import _compile_files, _compile_paths

__all__ = [
    "compile",
    "Deck",
    "Store",
    "diff_arrow",
    "RuledeckError",
    "CompileError",
    "BundleError",
    "StoreError",
    "RequestError",
]

PathLike = Union[str, "os.PathLike[str]"]


def compile(files: Union[PathLike, Iterable[PathLike], Mapping[str, Union[str, bytes]]]) -> Deck:
    """Checks and compiles a deck.

    ``files`` is a path, a list of paths (``.rule`` files, or directories searched for
    them, sorted -- read and named as the CLI reads them), or a mapping of file name to
    source text. A deck with errors raises :class:`CompileError`: ``str(e)`` is the
    rendered diagnostics, ``e.diagnostics`` a list of dicts (``ruledeck check --format
    json``'s form).
    """
    if isinstance(files, Mapping):
        pairs = []
        for name, text in files.items():
            if not isinstance(name, str):
                raise TypeError(f"file names must be strings, not {type(name).__name__}")
            if isinstance(text, str):
                text = text.encode("utf-8")
            elif not isinstance(text, (bytes, bytearray)):
                raise TypeError(f"the source of {name!r} must be str or bytes, not {type(text).__name__}")
            pairs.append((name, bytes(text)))
        return _compile_files(pairs)
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    paths = [os.fspath(f) for f in files]
    if not paths:
        raise ValueError("give at least one .rule file or directory")
    return _compile_paths(paths)
