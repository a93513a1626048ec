"""Benchmark: `dbxml run` (the bundle's job graph, a papermill kernel per task, one Spark Connect server) against
the same graph run by the in-process executor (the same task functions, called in one Python process).

    python tests/benchmarks/bench_run.py [--months 2013-01..2013-03] [--window 3]

Each variant starts from an empty lakehouse in its own temporary home and runs the monthly job for the months:

- in-process, classic Spark: `run_job(..., in_process=True)` on a classic local Spark session (one JVM);
- in-process, Spark Connect: the same on a local Spark Connect server (one JVM), which is the Spark `dbxml run`
  uses, so the difference to `dbxml run` is the papermill executor's own cost (kernels, papermill, notebooks);
- dbxml run: the `dbxml run` command for the same months, one month's run after another (as Databricks runs a
  backfill's queued runs);
- dbxml run --overlap: the same, overlapped: each month's lakehouse task starts while the month before it scores,
  monitors and trains (nbs/32_runner.ipynb).

It prints the wall time of each, and the ratios of `dbxml run` to each variant, and checks that the two
`dbxml run`s' summaries agree on everything but the seconds (statuses, rows, model versions, metrics). Not a test:
timings vary with the machine, and the variants run one after another, so other load on the machine affects them
unevenly.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbxml.config import load_target, with_overrides
from dbxml.runner import run_job
from dbxml.sources import parse_months
from dbxml.spark import connect_server, get_spark


def in_process(target, args):
    "The monthly job's graph for the months, in this process; returns the months a model was trained in."
    outcome = run_job(target, overrides={"month": args.months, "window": str(args.window)}, in_process=True)
    if outcome.failed:
        sys.exit(f"the in-process run failed: {[(result.task, result.error) for result in outcome.failed]}")
    return [result.run for result in outcome.results if result.task == "train" and result.status == "SUCCESS"]


def summary_without_seconds(stdout):
    "The rows of `dbxml run`'s summary table, each without its seconds column."
    table = stdout.split("\nrun ")[-1].split("\n\n")[0].splitlines()[1:]
    return [" ".join(line.split()[:3] + line.split()[4:]) for line in table]


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
    months = parse_months(args.months)  # refuses a bad range before anything starts
    seconds = {}

    target = fresh_target("classic")
    def classic():
        try:
            return in_process(target, args)
        finally:
            get_spark(target).stop()
    seconds["in-process, classic Spark"], trained = timed(classic)
    print(f"in-process, classic Spark: {seconds['in-process, classic Spark']:.1f} s, trained in {trained}", flush=True)

    home = fresh_target("connect").home
    def connected():
        with connect_server(with_overrides(load_target("local", environ={}), home=home), 15012) as remote:
            os.environ["SPARK_REMOTE"] = remote  # as the runner does: MLflow asks pyspark for "the" session
            try:
                return in_process(with_overrides(load_target("connect", environ={}), home=home, spark_remote=remote),
                                  args)
            finally:
                os.environ.pop("SPARK_REMOTE")
    seconds["in-process, Spark Connect"], trained = timed(connected)
    print(f"in-process, Spark Connect: {seconds['in-process, Spark Connect']:.1f} s, trained in {trained}", flush=True)

    environ = {key: value for key, value in os.environ.items() if key not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    command = [str(Path(sys.executable).parent / "dbxml"), "run", "-p", f"month={args.months}",
               "-p", f"window={args.window}"]
    summaries = {}
    for name, extra in (("dbxml run", []), ("dbxml run --overlap", ["--overlap"])):
        home = fresh_target(name.split()[-1].strip("-")).home
        started = time.perf_counter()
        done = subprocess.run(command + extra, env=environ | {"DBXML_HOME": str(home)}, capture_output=True, text=True)
        seconds[name] = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        summaries[name] = summary_without_seconds(done.stdout)
        print(f"{name}: {seconds[name]:.1f} s", flush=True)
    if summaries["dbxml run"] != summaries["dbxml run --overlap"]:
        sys.exit("the overlapped and the sequential run disagree:\n" + "\n".join(
            sorted(set(summaries["dbxml run"]) ^ set(summaries["dbxml run --overlap"]))))
    print(f"the overlapped and the sequential run agree on all {len(summaries['dbxml run'])} task rows")

    print(f"\n{len(months)} months ({args.months}), window {args.window}")
    for name, value in seconds.items():
        print(f"{name:>26}: {value:7.1f} s   dbxml run / this = {seconds['dbxml run'] / value:.2f}x")
    # for tests/benchmarks/report.py
    print("RESULT " + json.dumps({"months": len(months), "seconds": seconds,
                                  "ratio": seconds["dbxml run"] / seconds["in-process, classic Spark"],
                                  "ratio_connect": seconds["dbxml run"] / seconds["in-process, Spark Connect"],
                                  "overlap": seconds["dbxml run --overlap"] / seconds["dbxml run"]}))


if __name__ == "__main__":
    main()
