"""Throughput of Deck.decide_arrow against the same rules written as a Polars expression
and as DuckDB SQL, and of ruledeck.spark in local mode. Not run in CI: the numbers go into
docs/performance.md.

    python python/bench/bench.py [--rows 10000000] [--spark-rows 2000000] [--runs 3]

Each engine gets the same in-memory Arrow table; each result is checked against
decide_arrow's before it is timed, so all three compute the same thing. Reported: the
median of --runs rounds in which the engines take turns, as rows per second.
"""

from __future__ import annotations

import argparse
import os
import sys
import statistics
import time

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

import ruledeck

DECK = """
entity user key uid
tag user.risk_score: int from "risk"
tag user.gmv_90d: float from "orders"
tag user.order_count: int from "orders"
tag ctx.channel: enum(app, h5, mini) passthrough
rule user low_risk = user.risk_score < 30
rule user big_spender = user.gmv_90d >= 1000.0 and user.order_count >= 3
scene payment {
  keys uid
  passes ctx.channel
  instance installments -> { count: int, label: text } {
    strategy boost when low_risk and ctx.channel == app => { count: 6, label: "6 interest-free" }
    strategy win_back when big_spender => { count: 12, label: "12 interest-free" }
    default => { count: 1, label: "" }
  }
}
"""

POLARS = (
    pl.when((pl.col("user.risk_score") < 30) & (pl.col("ctx.channel") == "app"))
    .then(pl.struct(count=pl.lit(6), label=pl.lit("6 interest-free"), strategy=pl.lit("boost")))
    .when((pl.col("user.gmv_90d") >= 1000.0) & (pl.col("user.order_count") >= 3))
    .then(pl.struct(count=pl.lit(12), label=pl.lit("12 interest-free"), strategy=pl.lit("win_back")))
    .otherwise(pl.struct(count=pl.lit(1), label=pl.lit(""), strategy=pl.lit("default")))
    .alias("d")
)

SQL = """
select *,
  case when "user.risk_score" < 30 and "ctx.channel" = 'app' then 6
       when "user.gmv_90d" >= 1000.0 and "user.order_count" >= 3 then 12 else 1 end as count,
  case when "user.risk_score" < 30 and "ctx.channel" = 'app' then '6 interest-free'
       when "user.gmv_90d" >= 1000.0 and "user.order_count" >= 3 then '12 interest-free' else '' end as label,
  case when "user.risk_score" < 30 and "ctx.channel" = 'app' then 'boost'
       when "user.gmv_90d" >= 1000.0 and "user.order_count" >= 3 then 'win_back' else 'default' end as strategy
from requests
"""


def data(rows: int) -> pa.Table:
    rng = np.random.default_rng(16)
    risk = rng.integers(0, 100, rows)
    risk_missing = rng.random(rows) < 0.02
    return pa.table(
        {
            "uid": pa.array([f"u-{i}" for i in range(rows)], pa.string()),
            "ctx.channel": pa.array(np.array(["app", "h5", "mini"])[rng.integers(0, 3, rows)], pa.string()),
            "user.risk_score": pa.array(risk, pa.int64(), mask=risk_missing),
            "user.gmv_90d": pa.array(rng.gamma(2.0, 400.0, rows), pa.float64()),
            "user.order_count": pa.array(rng.integers(0, 10, rows), pa.int64()),
        }
    )


def sql_table(con) -> pa.Table:
    """The query's whole result, materialized (DuckDB 2's `arrow()` is a lazy reader)."""
    return con.sql(SQL).to_arrow_table()


def median_rates(rows: int, runs: int, engines: dict) -> dict:
    """Rows per second of each engine, the median over `runs` rounds. The engines take turns
    within each round, so a noisy neighbour slows them all alike and the ratios hold."""
    times = {name: [] for name in engines}
    for _ in range(runs):
        for name, f in engines.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return {name: rows / statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--spark-rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    deck = ruledeck.compile({"bench.rule": DECK})
    table = data(args.rows)
    print(f"{args.rows:,} rows, {args.threads} threads, {os.cpu_count()} cores, load {os.getloadavg()}")

    ours = deck.decide_arrow("payment", "installments", table, now=0, threads=args.threads)
    frame = pl.from_arrow(table)
    theirs = frame.select(POLARS).unnest("d")
    assert theirs["strategy"].to_list() == ours.column("strategy").to_pylist(), "Polars computes something else"
    con = duckdb.connect()
    con.register("requests", table)
    sql = sql_table(con)
    assert sql.column("strategy").to_pylist() == ours.column("strategy").to_pylist(), "DuckDB computes something else"

    rates = median_rates(
        args.rows,
        args.runs,
        {
            "ruledeck decide_arrow": lambda: deck.decide_arrow(
                "payment", "installments", table, now=0, threads=args.threads
            ),
            "ruledeck decide_arrow, 1 thread": lambda: deck.decide_arrow(
                "payment", "installments", table, now=0, threads=1
            ),
            "Polars expression": lambda: frame.with_columns(POLARS).unnest("d"),
            "DuckDB SQL (to Arrow)": lambda: sql_table(con),
        },
    )
    for name, rate in rates.items():
        print(f"{name:34} {rate / 1e6:8.2f} M rows/s")

    if args.spark_rows:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # The workers must run this interpreter (the one with ruledeck installed).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        import ruledeck.spark as ruledeck_spark

        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.memory", "4g")
            .getOrCreate()
        )
        small = table.slice(0, args.spark_rows)
        df = spark.createDataFrame(small.to_pylist(), schema="uid string, `ctx.channel` string, `user.risk_score` bigint, `user.gmv_90d` double, `user.order_count` bigint").cache()
        df.count()
        out = ruledeck_spark.decide(df, deck, "payment", "installments", now=0)
        rate = median_rates(
            args.spark_rows, args.runs, {"spark": lambda: out.write.format("noop").mode("overwrite").save()}
        )["spark"]
        print(f"{'Spark local[2] ruledeck.spark':34} {rate / 1e6:8.2f} M rows/s ({args.spark_rows:,} cached rows)")
        spark.stop()


if __name__ == "__main__":
    main()
