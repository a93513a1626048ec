"""Benchmark: `dbxml run` (the bundle's job graph, a papermill kernel per task, one Spark Connect server) against
the same stages called as plain functions in one Python process.

    python tests/benchmarks/bench_run.py [--months 2013-01..2013-03] [--window 3]

Each variant starts from an empty lakehouse in its own temporary home and does the same work per month:
`run_lakehouse`, `score_month` (once there is a champion), `monitor_and_decide`, and on a retrain decision
`train_model` + `register`, `validate` + `promote` (what the pipeline notebooks call).

- plain, classic Spark: the functions in this process on a classic local Spark session (one JVM);
- plain, Spark Connect: the functions in this process on a local Spark Connect server (one JVM), which is the
  Spark `dbxml run` uses, so the difference to `dbxml run` is the runner's own cost (kernels, papermill, files,
  MLflow logging of the notebooks);
- dbxml run: the `dbxml run` command for the same months.

It prints the wall time of each, and the ratios of `dbxml run` to each plain variant. Not a test: timings vary
with the machine, and the variants run one after another, so other load on the machine affects them unevenly.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbxml.config import load_target, with_overrides
from dbxml.lakehouse import parse_months, run_lakehouse
from dbxml.lifecycle import monitor_and_decide
from dbxml.registry import alias_version, promote, register, validate
from dbxml.score import score_month
from dbxml.spark import connect_server, connect_spark, start_local_spark
from dbxml.train import train_model


def plain_stages(spark, target, months, window):
    "The monthly job's stages for each month, as plain calls; returns the months a model was trained in."
    trained_in = []
    for month in months:
        run_lakehouse(spark, target, [month], progress=None)
        if alias_version(target) is not None:
            score_month(spark, target, month)
        retrain, reason = monitor_and_decide(spark, target, month, window)
        if retrain:
            version = register(target, train_model(spark, target, month, window))
            promote(target, validate(spark, target, version, month), f"{month}: {reason}")
            trained_in.append(month)
    return trained_in


def fresh_target(label):
    return with_overrides(load_target("local", environ={}), home=Path(tempfile.mkdtemp(prefix=f"bench-{label}-")))


def timed(work):
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--months", default="2013-01..2013-03")
    parser.add_argument("--window", type=int, default=3)
    args = parser.parse_args()
    months = parse_months(args.months)
    seconds = {}

    target = fresh_target("classic")
    def classic():
        spark = start_local_spark(target)
        try:
            return plain_stages(spark, target, months, args.window)
        finally:
            spark.stop()
    seconds["plain, classic Spark"], trained = timed(classic)
    print(f"plain, classic Spark: {seconds['plain, classic Spark']:.1f} s, trained in {trained}", flush=True)

    target = fresh_target("connect")
    def connected():
        with connect_server(target, 15012) as remote:
            os.environ["SPARK_REMOTE"] = remote  # as the runner does: MLflow asks pyspark for "the" session
            try:
                return plain_stages(connect_spark(remote), target, months, args.window)
            finally:
                os.environ.pop("SPARK_REMOTE")
    seconds["plain, Spark Connect"], trained = timed(connected)
    print(f"plain, Spark Connect: {seconds['plain, Spark Connect']:.1f} s, trained in {trained}", flush=True)

    target = fresh_target("run")
    environ = {key: value for key, value in os.environ.items() if key not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    command = [str(Path(sys.executable).parent / "dbxml"), "run", "-p", f"month={args.months}",
               "-p", f"window={args.window}"]
    seconds["dbxml run"], done = timed(lambda: subprocess.run(command, env=environ | {"DBXML_HOME": str(target.home)},
                                                              capture_output=True, text=True))
    if done.returncode != 0:
        sys.exit(f"dbxml run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    print(f"dbxml run: {seconds['dbxml run']:.1f} s", flush=True)

    print(f"\n{len(months)} months ({args.months}), window {args.window}")
    for name, value in seconds.items():
        print(f"{name:>22}: {value:7.1f} s   dbxml run / this = {seconds['dbxml run'] / value:.2f}x")


if __name__ == "__main__":
    main()
