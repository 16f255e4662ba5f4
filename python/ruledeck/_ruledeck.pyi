"""Type hints of the Rust extension module (see ruledeck/__init__.py for the package)."""

from os import PathLike
from typing import Any, overload

import pyarrow as pa

class RuledeckError(Exception):
    """Base class of every ruledeck error."""

class CompileError(RuledeckError):
    """The deck does not compile. ``str(e)`` is the rendered diagnostics (rustc-style)."""

    diagnostics: list[dict[str, Any]]
    """Each diagnostic as ``ruledeck check --format json`` gives it: code, severity,
    message, file, line, column, end_line, end_column, labels, notes, help."""

class BundleError(RuledeckError):
    """A bundle could not be read (corrupt, truncated, or from another version)."""

class StoreError(RuledeckError):
    """A release store refused: no such store or release, a corrupt manifest or bundle."""

class RequestError(RuledeckError):
    """A request or input table was refused: unknown scene or instance, a missing key
    column, a column of the wrong type, an unknown column. The message names the column."""

ArrowData = Any
"""A pyarrow RecordBatch, Table or RecordBatchReader, a Polars DataFrame, a list of
record batches, or anything with ``__arrow_c_array__`` / ``__arrow_c_stream__``."""

Now = int | str | Any
"""Whole seconds since the epoch, RFC 3339 text, or an aware ``datetime``."""

class Deck:
    """A compiled deck: immutable and safe to share across threads."""

    @staticmethod
    def from_bundle(data: bytes) -> Deck:
        """Reads a compiled bundle (``ruledeck build -o deck.rdb`` or ``to_bundle()``).
        Raises :class:`BundleError` for a corrupt or foreign one."""
    def to_bundle(self) -> bytes:
        """The deck as a self-checking bundle that ``from_bundle`` reads back."""
    @property
    def release(self) -> int | None:
        """The release this deck was loaded from (via :class:`Store`), else None."""
    def instances(self) -> list[tuple[str, str]]:
        """Every ``(scene, instance)`` of the deck, in declaration order."""
    def decide(
        self,
        scene: str,
        instance: str,
        input: dict[str, Any],
        tags: dict[str, Any] | str | PathLike[str] | None = None,
        explain: bool = False,
    ) -> dict[str, Any]:
        """One decision, exactly the result object ``ruledeck eval`` prints:
        ``{"scene", "instance", "decision", "strategy", "experiment", "group", "bucket"}``
        (plus ``"trace"`` with ``explain``, ``"release"``/``"version"`` for a store's deck).

        ``input``: keys (``"uid": "u-1"``), pass-through tags by full name
        (``"ctx.channel": "app"``), optional ``"now"`` (RFC 3339 or seconds; the wall clock
        otherwise). ``tags``: data for loaded tags in the ``--tags`` file format
        (``{"user": {"u-1": {"risk_score": 12}}}``) or a path to such a file; without it
        every loaded tag is missing. Raises :class:`RequestError` for a refused request."""
    @overload
    def decide_arrow(
        self, scene: str, instance: str, batches: pa.RecordBatch, now: Now | None = None, threads: int | None = None
    ) -> pa.RecordBatch: ...
    @overload
    def decide_arrow(
        self, scene: str, instance: str, batches: ArrowData, now: Now | None = None, threads: int | None = None
    ) -> pa.Table: ...
    def decide_arrow(
        self, scene: str, instance: str, batches: ArrowData, now: Now | None = None, threads: int | None = None
    ) -> Any:
        """Decides every row, in Rust, on ``threads`` threads (default: every core),
        with the GIL released. Input is read zero-copy through the Arrow PyCapsule interface.

        Input columns: the scene's keys (string, large_string, string_view or integer),
        pass-through tags and loaded tags by full name (``user.risk_score``; null = missing,
        so the tag is unknown), and optionally ``now`` (timestamp, seconds, or RFC 3339).
        Any other column raises :class:`RequestError` naming it.

        Output: the input columns, then one column per decision field (int64, float64,
        string, bool, timestamp[us, UTC], or lists of them; null when nothing was decided),
        ``strategy``, ``experiment``, ``group`` (string), ``bucket`` (int32) and ``error``
        (string: why the row was refused, as ``eval`` reports it; null otherwise). A field
        named like an input or outcome column is output as ``decision.<name>``.

        A RecordBatch gives a RecordBatch; a stream, Table or DataFrame gives a Table."""
    def input_columns(self, scene: str, instance: str) -> list[tuple[str, str, str, str | None]]:
        """The columns ``decide_arrow`` reads: ``(name, role, type, key)``, role ``key``,
        ``pass`` or ``tag``, type as the deck writes it (``int``, ``list<text>``,
        ``enum(app, h5)``), and for a tag the key that loads it. ``now`` is accepted too."""
    def output_schema(self, scene: str, instance: str, schema: pa.Schema) -> pa.Schema:
        """The schema ``decide_arrow`` returns for input of ``schema`` (checked as
        ``decide_arrow`` checks it)."""

def diff_arrow(
    old: Deck,
    new: Deck,
    scene: str,
    instance: str,
    batches: ArrowData,
    now: Now | None = None,
    threads: int | None = None,
) -> Any:
    """Both decks' decisions per row: the input columns, ``old.*`` and ``new.*`` output
    columns (as ``decide_arrow``'s), and ``changed`` (bool): the decision, strategy,
    experiment, group or error differ -- what ``ruledeck diff --inputs`` counts. A row both
    refuse is not changed. Columns only one deck reads are allowed."""

class Store:
    """A release store (``ruledeck release --store DIR``), read-only."""

    def __init__(self, path: str | PathLike[str]) -> None:
        """Opens the store; raises :class:`StoreError` if there is none at ``path``."""
    def current(self) -> Deck:
        """The current release's deck; its decisions carry ``release`` and ``version``."""
    def release(self, n: int) -> Deck:
        """Release ``n``'s deck."""
    def current_number(self) -> int | None:
        """The current release's number (None before the first release)."""

def _compile_files(files: list[tuple[str, bytes]]) -> Deck: ...
def _compile_paths(paths: list[str]) -> Deck: ...
