"""Benchmark: batch scoring through Spark against the same model's `predict` on a pandas frame.

    python tests/benchmarks/bench_scoring.py [--months 2013-01..2013-12] [--repeats 3]

It uses the local target's lakehouse and champion (run `make run` first); if the target has no champion,
it runs the monthly job in-process for the months on a scratch lakehouse (the first model comes from
the second month's run).

- spark: `mlflow.pyfunc.spark_udf` over the months' feature rows, read from Delta, each run forced with
  Spark's `noop` sink (every row scored, nothing written): what `dbxml.score` does minus the Delta write.
- pandas: the same model loaded once with `mlflow.pyfunc.load_model`, then `predict` on the same rows
  already in one pandas frame in this process: no I/O, no serialisation, one core's worth of work.
  That is the limit Spark's Python workers approach.

It prints rows per second for each (best of `--repeats`), and the ratio spark / pandas. Not a test:
timings vary with the machine.
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import mlflow
from pyspark.sql import functions as F

from dbxml.catalog import table_name
from dbxml.config import load_target, with_overrides
from dbxml.registry import alias_version, model_name
from dbxml.runner import run_job
from dbxml.score import probability_column
from dbxml.sources import parse_months
from dbxml.spark import get_spark
from dbxml.tracking import use_mlflow
from dbxml.train import input_columns
from dbxml.usecase import use_case_of


def best_of(repeats, work):
    "The fastest of `repeats` runs of `work()`, in seconds."
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main():
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--months", default="2013-01..2013-12")
    options.add_argument("--repeats", type=int, default=3)
    args = options.parse_args()
    months = parse_months(args.months)
    target = load_target("local")
    spark = get_spark(target)
    if alias_version(target) is None:
        target = with_overrides(target, home=Path(tempfile.mkdtemp(prefix="dbxml-bench-")))
        spark.stop()
        spark = get_spark(target)
        print(f"no champion on the local target: running the monthly job in-process for {args.months} in "
              f"{target.home}", flush=True)
        done = run_job(target, overrides={"month": args.months, "window": "1"}, in_process=True)
        if done.failed or alias_version(target) is None:
            raise SystemExit(f"the monthly job left no champion: {[(r.task, r.error) for r in done.failed]}")
    use_mlflow(target)
    uri = f"models:/{model_name(target)}/{alias_version(target)}"
    features = spark.table(table_name(target, "gold_flight_features").on(target)).where(F.col("month").isin(months))
    rows = features.count()
    use_case = use_case_of(target)
    probability = probability_column(spark, uri, use_case)
    scored = features.select("flight_id", probability.alias("delay_probability"))
    spark_seconds = best_of(args.repeats, lambda: scored.write.format("noop").mode("overwrite").save())

    frame = features.select(*input_columns(use_case)).toPandas()
    started = time.perf_counter()
    model = mlflow.pyfunc.load_model(uri)
    load_seconds = time.perf_counter() - started
    pandas_seconds = best_of(args.repeats, lambda: model.predict(frame[list(use_case.model_features)]))

    print(f"model {uri}, {rows} rows of {len(months)} month(s), Spark master {spark.conf.get('spark.master', '?')}")
    print(f"spark_udf through Spark : {spark_seconds:7.2f} s  {rows / spark_seconds:12,.0f} rows/s")
    print(f"predict on pandas       : {pandas_seconds:7.2f} s  {rows / pandas_seconds:12,.0f} rows/s "
          f"(+ {load_seconds:.2f} s to load the model once)")
    print(f"ratio spark / pandas    : {spark_seconds / pandas_seconds:7.2f}x the time "
          f"({pandas_seconds / spark_seconds:.0%} of the in-process rate)")
    # for tests/benchmarks/report.py
    print("RESULT " + json.dumps({"rows": rows, "spark_rows_per_s": rows / spark_seconds,
                                  "pandas_rows_per_s": rows / pandas_seconds, "share": pandas_seconds / spark_seconds}))


if __name__ == "__main__":
    main()
