"""Shared fixtures: the repository's example deck, its data, and the CLI that the Python
results must equal (built by `cargo build --release`; `RULEDECK_BIN` overrides)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

import ruledeck

REPO = Path(__file__).resolve().parents[2]
DECK = REPO / "examples" / "deck"
TAGS = DECK / "tags.json"
INPUTS = DECK / "inputs.jsonl"
NOW = "2026-11-21T08:00:00Z"


def cli_path() -> Path:
    if os.environ.get("RULEDECK_BIN"):
        return Path(os.environ["RULEDECK_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "release" / "ruledeck"


@pytest.fixture(scope="session")
def cli():
    path = cli_path()
    if not path.exists():
        pytest.fail(f"the ruledeck CLI is not built at {path}: run `cargo build --release` (or set RULEDECK_BIN)")

    def run(*args: str, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(path), *args], input=input, capture_output=True, text=True, env={**os.environ, **(env or {})}
        )

    return run


@pytest.fixture(scope="session")
def deck() -> ruledeck.Deck:
    return ruledeck.compile([str(DECK)])


@pytest.fixture(scope="session")
def requests() -> list[dict]:
    return [json.loads(line) for line in INPUTS.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def tags() -> dict:
    return json.loads(TAGS.read_text())


_SCALARS = {
    "int": pa.int64(),
    "float": pa.float64(),
    "text": pa.string(),
    "bool": pa.bool_(),
    "time": pa.timestamp("s", tz="UTC"),
}


def arrow_type(ty: str) -> pa.DataType:
    if ty.startswith("list<"):
        return pa.list_(arrow_type(ty[5:-1]))
    if ty.startswith("enum("):
        return pa.string()
    return _SCALARS[ty]


def _fits(value, ty: str) -> bool:
    """Whether a JSON value from the tags file is of the tag's type (else: no Arrow value)."""
    if ty.startswith("list<"):
        return isinstance(value, list) and all(_fits(v, ty[5:-1]) for v in value)
    if ty in ("text", "time") or ty.startswith("enum("):
        return isinstance(value, str)
    if ty == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if ty == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ty == "bool":
        return isinstance(value, bool)
    return False


def _cell(value, ty: str):
    if ty == "time":
        from datetime import datetime

        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if ty.startswith("list<time"):
        return [_cell(v, "time") for v in value]
    return value


def request_table(deck: ruledeck.Deck, scene: str, instance: str, requests: list[dict], tags: dict) -> pa.Table:
    """The JSON requests and the tags file as one Arrow table: keys, pass-through tags and
    one column per loaded tag (a value the tags file holds with the wrong type becomes null:
    missing, which is what the CLI makes of it). Requests without every key are left out."""
    columns = deck.input_columns(scene, instance)
    keys = [name for name, role, _, _ in columns if role == "key"]
    rows = [r for r in requests if all(k in r for k in keys)]
    data, fields = {}, []
    for name, role, ty, key in columns:
        if role == "key":
            values, arrow = [str(r[name]) for r in rows], pa.string()
        elif role == "pass":
            values, arrow = [r.get(name) for r in rows], arrow_type(ty)
        else:
            entity, field = name.split(".", 1)
            values = []
            for r in rows:
                v = tags.get(entity, {}).get(str(r[key]), {}).get(field)
                values.append(_cell(v, ty) if v is not None and _fits(v, ty) else None)
            arrow = arrow_type(ty)
        fields.append(pa.field(name, arrow))
        data[name] = values
    fields.append(pa.field("now", pa.string()))
    data["now"] = [r.get("now") for r in rows]
    return pa.Table.from_pydict(data, schema=pa.schema(fields))


def result_rows(table: pa.Table, deck: ruledeck.Deck, scene: str, instance: str) -> list[dict]:
    """decide_arrow's output rows in the shape of the CLI's result object."""
    from datetime import datetime, timezone

    inputs = {c[0] for c in deck.input_columns(scene, instance)} | {"now"}
    fields = [c for c in table.column_names if c not in inputs and c not in ("strategy", "experiment", "group", "bucket", "error")]
    out = []
    for row in table.to_pylist():
        if row["error"] is not None:
            out.append({"scene": scene, "instance": instance, "error": row["error"]})
            continue

        def plain(v):
            if isinstance(v, datetime):
                return v.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if isinstance(v, list):
                return [plain(x) for x in v]
            return v

        decided = row["strategy"] is not None
        out.append(
            {
                "scene": scene,
                "instance": instance,
                "decision": {f.removeprefix("decision."): plain(row[f]) for f in fields} if decided else None,
                "strategy": row["strategy"],
                "experiment": row["experiment"],
                "group": row["group"],
                "bucket": row["bucket"],
            }
        )
    return out
