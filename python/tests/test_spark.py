"""ruledeck.spark on a local Spark (local[2]): decisions and diffs over mapInArrow equal
decide_arrow's. Skipped only where PySpark or Java is missing, unless RULEDECK_REQUIRE_SPARK
is set (CI sets it, so the test cannot silently not run there)."""

from __future__ import annotations

import os
import sys
import shutil

import pyarrow as pa
import pytest

import ruledeck

try:
    import pyspark  # noqa: F401

    HAVE_SPARK = shutil.which("java") is not None
except ImportError:
    HAVE_SPARK = False

if not HAVE_SPARK:
    if os.environ.get("RULEDECK_REQUIRE_SPARK"):
        raise RuntimeError("RULEDECK_REQUIRE_SPARK is set but pyspark or java is missing")
    pytest.skip("pyspark or java is not installed", allow_module_level=True)

from test_engines import NEW, OLD  # noqa: E402

N = 30_000


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # The workers must run this interpreter (the one with ruledeck installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("ruledeck-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "4096")
        .getOrCreate()
    )
    yield session
    session.stop()


def rows():
    return [(f"u-{i}", "app" if i % 4 else "h5", None if i % 97 == 0 else i % 100) for i in range(N)]


def test_spark_decide_and_diff_equal_decide_arrow(spark):
    import ruledeck.spark

    old, new = ruledeck.compile({"p.rule": OLD}), ruledeck.compile({"p.rule": NEW})
    df = spark.createDataFrame(rows(), "uid string, `ctx.channel` string, `user.risk_score` bigint").repartition(3)
    out = ruledeck.spark.decide(df, old, "payment", "installments", now=0)
    assert out.columns == ["uid", "ctx.channel", "user.risk_score", "count", "strategy", "experiment", "group", "bucket", "error"]
    got = {r["uid"]: (r["count"], r["strategy"]) for r in out.collect()}
    data = pa.table({"uid": [r[0] for r in rows()], "ctx.channel": [r[1] for r in rows()], "user.risk_score": pa.array([r[2] for r in rows()], pa.int64())})
    want = old.decide_arrow("payment", "installments", data, now=0)
    assert got == dict(zip(want.column("uid").to_pylist(), zip(want.column("count").to_pylist(), want.column("strategy").to_pylist())))

    d = ruledeck.spark.diff(df, old, new, "payment", "installments", now=0)
    changed = d.filter("changed").count()
    assert changed == sum(ruledeck.diff_arrow(old, new, "payment", "installments", data, now=0).column("changed").to_pylist())
    summary = {(r[0], r[1]): r[2] for r in d.filter("changed").groupBy("`old.strategy`", "`new.strategy`").count().collect()}
    assert summary == {("default", "boost"): changed}


def test_spark_refuses_bad_columns_on_the_driver(spark):
    import ruledeck.spark

    deck = ruledeck.compile({"p.rule": OLD})
    df = spark.createDataFrame([(1.5, "app")], "uid double, `ctx.channel` string")
    with pytest.raises(ruledeck.RequestError, match="key column `uid` is double"):
        ruledeck.spark.decide(df, deck, "payment", "installments")


def test_a_worker_keeps_the_last_decks_it_read():
    import ruledeck.spark as rs

    rs._DECKS.clear()
    bundles = [ruledeck.compile({"p.rule": OLD.replace("< 30", f"< {n}")}).to_bundle() for n in range(10)]
    for b in bundles:
        rs._deck(b)
    assert len(rs._DECKS) == rs._KEEP_DECKS
    first_kept = rs._deck(bundles[2])
    assert rs._deck(bundles[2]) is first_kept, "a kept deck is read once"
    rs._deck(bundles[0])
    assert len(rs._DECKS) == rs._KEEP_DECKS and rs._deck(bundles[2]) is first_kept, "the used one stays"
