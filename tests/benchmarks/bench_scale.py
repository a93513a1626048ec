"""Benchmark: the monthly job on 1x, 3x and 10x the data, to see whether the cost per row stays flat.

    python tests/benchmarks/bench_scale.py [--months 2013-01..2013-03] [--factors 1,3,10]

For each factor, in a process of its own (its own JVM) on a fresh temporary home, it lands the months with every
flight repeated `factor` times under new flight numbers (flight + 10,000 x copy: new keys, and the same carriers,
airports, planes and weather, so every rule, join and drift statistic applies to the copies as to the real rows).
Then it runs the monthly job over them in-process and profiled (`run_job(..., profile=True)`, window 1: February
trains the first model, March is scored and monitored by it).

It prints, per factor and task: seconds, flights per second (a task's month's flights over its seconds) and the
peak memory of the Spark JVM and of the Python driver (`dbxml.profile`); then, per task, each factor's seconds per
flight and peak memory as a ratio to the first factor's. Flat is a ratio near 1 for memory and at most 1 for time
per flight. Not a test: timings vary with the machine.
"""
import argparse
import dataclasses
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from dbxml.config import load_target, with_overrides
from dbxml.runner import run_job
from dbxml.sources import (
    csv_text,
    flights_file,
    months_between,
    package_data_dir,
    split_flights_by_month,
    write_atomically,
)

FLIGHT_NUMBER_STEP = 10_000  # above every real flight number (at most 8,500 in 2013)


def land_scaled(target, months: list[str], factor: int) -> dict[str, int]:
    "Land each of `months` with every flight repeated `factor` times under new flight numbers; flights per month."
    with zipfile.ZipFile(package_data_dir() / "flights.csv.zip") as archive, archive.open("flights.csv") as raw:
        by_month = split_flights_by_month(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
    landed = {}
    for month in months:
        header, *rows = by_month[month]
        flight = header.index("flight")
        copies = [[*row[:flight], str(int(row[flight]) + copy * FLIGHT_NUMBER_STEP), *row[flight + 1:]]
                  for copy in range(factor) for row in rows]
        write_atomically(flights_file(target, month), csv_text([header, *copies]))
        landed[month] = len(copies)
    return landed


def run_one(factor: int, months: str) -> dict:
    "Land the scaled months in a new home and run the job over them, profiled: what one factor measured."
    home = Path(tempfile.mkdtemp(prefix=f"dbxml-scale-{factor}x-"))
    target = with_overrides(load_target("local", environ={}), home=home)
    flights = land_scaled(target, months_between(*months.split("..")), factor)
    started = time.perf_counter()
    outcome = run_job(target, overrides={"month": months, "window": "1"}, profile=True)
    failed = [(result.run, result.task, result.error) for result in outcome.failed]
    return {"factor": factor, "home": str(home), "flights": flights, "failed": failed,
            "wall": round(time.perf_counter() - started, 1),
            "profiles": [dataclasses.asdict(profile) for profile in outcome.profiles]}


def by_task(measured: dict) -> dict[str, dict]:
    "Per task: seconds, the flights of the months it ran for, and its largest peaks."
    tasks = {}
    for profile in measured["profiles"]:
        task = tasks.setdefault(profile["task"], {"seconds": 0.0, "flights": 0, "jvm": 0, "python": 0})
        task["seconds"] += profile["seconds"]
        task["flights"] += measured["flights"][profile["run"]]
        task["jvm"] = max(task["jvm"], profile["jvm_peak_mb"])
        task["python"] = max(task["python"], profile["python_peak_mb"])
    return tasks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", default="2013-01..2013-03")
    parser.add_argument("--factors", default="1,3,10")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # run one factor here and print its JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.months)))
        return
    results = []
    for factor in map(int, args.factors.split(",")):
        done = subprocess.run([sys.executable, __file__, "--one", str(factor), "--months", args.months],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{factor}x failed:\n{done.stderr[-3000:]}")
        measured = json.loads(done.stdout.splitlines()[-1])
        if measured["failed"]:
            sys.exit(f"{factor}x: tasks failed: {measured['failed']}")
        results.append(measured)
        tasks = by_task(measured)
        print(f"\n{factor}x: {sum(measured['flights'].values()):,} flights in {len(measured['flights'])} months, "
              f"job {measured['wall']:.1f} s ({measured['home']})")
        print(f"{'task':<14} {'seconds':>8} {'flights/s':>10} {'JVM peak MiB':>13} {'Python peak MiB':>16}")
        for name, task in tasks.items():
            print(f"{name:<14} {task['seconds']:>8.1f} {task['flights'] / task['seconds']:>10,.0f} "
                  f"{task['jvm']:>13,} {task['python']:>16,}")
        total = sum(task["seconds"] for task in tasks.values())
        print(f"{'all tasks':<14} {total:>8.1f} {sum(measured['flights'].values()) / total:>10,.0f}")
    base = by_task(results[0])
    print(f"\nratios to {results[0]['factor']}x: seconds per flight / JVM peak / Python peak")
    print(f"{'task':<14}" + "".join(f"{str(result['factor']) + 'x':>22}" for result in results[1:]))
    for name, first in base.items():
        cells = []
        for result in results[1:]:
            task = by_task(result)[name]
            per_flight = (task["seconds"] / task["flights"]) / (first["seconds"] / first["flights"])
            cells.append(f"{per_flight:.2f} / {task['jvm'] / first['jvm']:.2f} / {task['python'] / first['python']:.2f}")
        print(f"{name:<14}" + "".join(f"{cell:>22}" for cell in cells))
    # for tests/benchmarks/report.py: the largest factor against the first, over all tasks
    first, last = results[0], results[-1]

    def per_flight(result):
        return sum(task["seconds"] for task in by_task(result).values()) / sum(result["flights"].values())

    def peak(result, kind):
        return max(task[kind] for task in by_task(result).values())

    print("RESULT " + json.dumps({"factors": [result["factor"] for result in results],
                                  "seconds": [result["wall"] for result in results],
                                  "per_flight_ratio": per_flight(last) / per_flight(first),
                                  "jvm_peak_ratio": peak(last, "jvm") / peak(first, "jvm"),
                                  "python_peak_ratio": peak(last, "python") / peak(first, "python")}))


if __name__ == "__main__":
    main()
