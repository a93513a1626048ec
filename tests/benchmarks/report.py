"""Every benchmark in one run, and one table with each figure beside its goal (issue 17).

    .venv/bin/python tests/benchmarks/report.py [--quick] [--write]

It runs each benchmark script in a process of its own, one after another (nothing else should run meanwhile),
shows its output, and reads the `RESULT {json}` line each prints last. Then it prints a Markdown table: the goal,
the figure measured, and whether the goal is met. `--write` also puts the table in the quality requirements of
`nbs/platform/architecture.md`, between its `benchmark-report` markers, with the date and the machine's cores.

`--quick` runs each benchmark on less data (two months; 1x and 3x for the scale), to check the report end to end in
a few minutes. Its figures are not comparable with the goals, and `--write` refuses it.
"""
import argparse
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = HERE.parents[1] / "nbs" / "platform" / "architecture.md"
MARKERS = ("<!-- benchmark-report:start -->", "<!-- benchmark-report:end -->")

# benchmark -> (arguments for the goals' sizes, arguments for --quick)
BENCHMARKS = {
    "bench_year.py": ([], ["--months", "2013-01..2013-02"]),
    "bench_lakehouse.py": ([], ["--months", "2013-01..2013-02"]),
    "bench_run.py": ([], ["--months", "2013-01..2013-02"]),
    "bench_scoring.py": ([], ["--months", "2013-01..2013-02", "--repeats", "1"]),
    "bench_scale.py": ([], ["--months", "2013-01..2013-02", "--factors", "1,3"]),
    "bench_startup.py": ([], []),
}

# (benchmark, figure, goal's words, how the figure is shown, whether it meets the goal; None: no goal)
GOALS = [
    ("bench_year.py", "seconds", "the year (`make run`'s job) in at most 3 min", "{:.0f} s", lambda v: v <= 180),
    ("bench_year.py", "jvms", "... on one Spark JVM", "{}", lambda v: v == 1),
    ("bench_year.py", "peak_gb", "... in at most 3 GiB (every process of the run)", "{:.2f} GiB", lambda v: v <= 3),
    ("bench_year.py", "rerun_ratio", "a rerun of processed months at most 0.2x the first run", "{:.2f}x",
     lambda v: v <= 0.2),
    ("bench_lakehouse.py", "ratio", "the lakehouse stages at most 1.1x a plain PySpark job", "{:.2f}x",
     lambda v: v <= 1.1),
    ("bench_run.py", "ratio", "`dbxml run` at most 1.3x the same tasks in one process", "{:.2f}x", lambda v: v <= 1.3),
    ("bench_run.py", "overlap", "(no goal) `dbxml run --overlap` over `dbxml run`",
     "{:.2f}x", None),
    ("bench_scoring.py", "share", "Spark scoring at least 80% of pandas' in-process rate", "{:.0%}",
     lambda v: v >= 0.8),
    ("bench_scale.py", "per_flight_ratio", "time per flight at the largest size at most 1.0x the smallest's", "{:.2f}x",
     lambda v: v <= 1.0),
    ("bench_scale.py", "jvm_peak_ratio", "driver memory flat: the JVM's peak at most 1.2x the smallest size's",
     "{:.2f}x", lambda v: v <= 1.2),
    ("bench_startup.py", "warm_start_s", "(no goal) a warm start of dbxml's Spark to a first answer", "{:.1f} s", None),
    ("bench_startup.py", "warm_start_ratio", "(no goal) the same over a plain local PySpark session", "{:.2f}x", None),
]


def run_benchmark(name: str, arguments: list[str]) -> dict:
    "Run one benchmark, showing its output as it comes; its RESULT."
    print(f"\n==== {name} {' '.join(arguments)}", flush=True)
    process = subprocess.Popen([sys.executable, str(HERE / name), *arguments], cwd=HERE.parents[1],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    result = None
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.startswith("RESULT "):
            result = json.loads(line.removeprefix("RESULT "))
    if process.wait() != 0 or result is None:
        sys.exit(f"{name} failed (exit status {process.returncode}) or printed no RESULT line")
    return result


def table(results: dict[str, dict]) -> str:
    "The Markdown table of every goal, its figure and whether it is met."
    lines = ["| Goal | Measured | Met |", "|---|---|---|"]
    for name, figure, words, shown, meets in GOALS:
        value = results[name][figure]
        verdict = "" if meets is None else ("yes" if meets(value) else "**no**")
        lines.append(f"| {words} | {shown.format(value)} | {verdict} |")
    return "\n".join(lines)


def write_to_page(report: str, page: Path = PAGE):
    "Replace what stands between the page's markers with `report`."
    text = page.read_text()
    pattern = re.compile(re.escape(MARKERS[0]) + ".*?" + re.escape(MARKERS[1]), re.DOTALL)
    if not pattern.search(text):
        sys.exit(f"{page} has no {MARKERS[0]} ... {MARKERS[1]} block")
    page.write_text(pattern.sub(lambda _: f"{MARKERS[0]}\n{report}\n{MARKERS[1]}", text))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="less data: checks the report, not the goals")
    parser.add_argument("--write", action="store_true", help="put the table in nbs/platform/architecture.md")
    args = parser.parse_args()
    if args.quick and args.write:
        sys.exit("--quick figures are not comparable with the goals: not written to the page")
    results = {name: run_benchmark(name, quick if args.quick else full)
               for name, (full, quick) in BENCHMARKS.items()}
    report = (f"Benchmark report of {date.today().isoformat()}, {os.cpu_count()} cores"
              f"{' (quick: less data than the goals assume)' if args.quick else ''}: "
              "`tests/benchmarks/report.py`.\n\n" + table(results))
    print("\n" + report)
    if args.write:
        write_to_page(report)
        print(f"\nwritten to {PAGE}")


if __name__ == "__main__":
    main()
