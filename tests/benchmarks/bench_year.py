"""Benchmark: `make run`'s main job, the whole year, then the same command again (nothing new to do).

    python tests/benchmarks/bench_year.py [--months 2013-01..2013-12]

On an empty home (a temporary folder) it runs `dbxml run monthly -p month=<months>`, the command `make run` runs,
and measures its wall time, the Spark driver JVMs it starts, and the peak memory of the whole process tree (the
command, its papermill kernels, the JVM, Spark's Python workers), sampled every 0.2 s as the sum of each process's
proportional set size (shared pages divided among their sharers, so forked workers are not counted twice), with
what each kind of process held at that peak. Then it runs the same command again: every month is already
processed, so the rerun's time over the first run's is the cost of finding that out.

It prints the figures and the goals of issue 17 (the year in at most 3 minutes, one JVM, at most 3 GB; a rerun at
most 0.2x the first run). Not a test: timings vary with the machine.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from count_jvms import spark_drivers

ROOT = Path(__file__).resolve().parents[2]


def proportional_mb(pid: int, rss_kib: int) -> float:
    """A process's proportional set size (PSS) in MiB: its resident pages, each shared page divided among the
    processes sharing it, so forked workers and kernels are not counted twice. Its RSS where Linux does not say."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss_kib / 1024


def process_kind(args: str) -> str:
    "What a process of the run is, from its command line: the kind its memory is reported under."
    if args.split()[0].endswith("java"):
        return "Spark JVM"
    if "ipykernel" in args:
        return "notebook kernels"
    if "pyspark.daemon" in args or "pyspark.worker" in args:
        return "Spark's Python workers"
    return "dbxml run and the rest"


def process_tree(root_pid: int) -> dict[int, tuple[str, float]]:
    "pid -> (its kind, its memory in MiB (PSS)), of `root_pid` and every process under it."
    listing = subprocess.run(["ps", "-ww", "-eo", "pid,ppid,rss,args"], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    args: dict[int, str] = {}
    for line in listing.splitlines()[1:]:
        pid, parent, kib, command = (line.split(maxsplit=3) + ["?"])[:4]  # a process may show no command line
        children.setdefault(int(parent), []).append(int(pid))
        rss[int(pid)], args[int(pid)] = int(kib), command
    tree, stack = {}, [root_pid]
    while stack:
        pid = stack.pop()
        tree[pid] = (process_kind(args.get(pid, "?")), proportional_mb(pid, rss.get(pid, 0)))
        stack += children.get(pid, [])
    return tree


def measured_run(command: list[str], env: dict) -> dict:
    "Run `command`; its wall time, Spark driver JVMs started, the process tree's peak memory and its parts then."
    drivers, peak, parts, finished = set(), 0.0, {}, threading.Event()
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def watch():
        nonlocal peak, parts
        while not finished.is_set():
            tree = process_tree(process.pid)
            drivers.update(set(spark_drivers()) & set(tree))  # this run's drivers, not another program's
            total = sum(mb for _, mb in tree.values())
            if total > peak:
                peak, parts = total, {}
                for kind, mb in tree.values():
                    parts[kind] = parts.get(kind, 0.0) + mb
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    output = process.communicate()[0]
    finished.set()
    watcher.join()
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return {"seconds": time.monotonic() - started, "jvms": len(drivers), "peak_mb": peak, "peak_parts_mb": parts,
            "output": output}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", default="2013-01..2013-12")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dbxml-year-"))
    env = {**os.environ, "DBXML_HOME": str(home)}
    command = [str(Path(sys.executable).parent / "dbxml"), "run", "monthly", "-p", f"month={args.months}"]
    first = measured_run(command, env)
    print(f"first run of {args.months}: {first['seconds']:.1f} s, {first['jvms']} Spark JVM(s), "
          f"peak memory {first['peak_mb'] / 1024:.2f} GiB (home {home})", flush=True)
    print("at the peak: " + ", ".join(f"{kind} {mb / 1024:.2f} GiB" for kind, mb in
                                      sorted(first["peak_parts_mb"].items(), key=lambda item: -item[1])), flush=True)
    again = measured_run(command, env)
    print(f"the same command again: {again['seconds']:.1f} s, {again['seconds'] / first['seconds']:.2f}x the first run")
    print("goals: the year in at most 180 s, 1 JVM, 3 GiB; a rerun at most 0.2x")
    print("last lines of the rerun:\n" + "\n".join(again["output"].strip().splitlines()[-3:]))
    # for tests/benchmarks/report.py
    print("RESULT " + json.dumps({"months": args.months, "seconds": first["seconds"], "jvms": first["jvms"],
                                  "peak_gb": first["peak_mb"] / 1024, "rerun_seconds": again["seconds"],
                                  "rerun_ratio": again["seconds"] / first["seconds"]}))


if __name__ == "__main__":
    main()
