# %% [markdown]
# # Profiles
# > What each task of a month costs: seconds, Spark jobs, Delta commits, files read and
# > rows written, measured on the local session (`dbxml run --profile`).
#
# At a month of 25 to 30 thousand flights, a task's time is almost all fixed cost: each
# Spark action plans and schedules a job, each Delta commit writes a log entry and a
# checksum, each read of a table first reads its log. Rows are cheap. To cut that cost
# one has to see it, per task, in numbers that do not depend on the machine's speed.

# %% [markdown]
# A profile counts, for each task:
#
# - **Spark jobs**: every action (a count, a write, a `MERGE`, Delta's own log replays),
#   counted by Spark's status tracker for the task's job group;
# - **Delta commits**: the new entries in the tables' `_delta_log` folders;
# - **log files read** and **data files read**: the files Spark's scans opened, told
#   apart by whether they sit in a `_delta_log` folder (Spark logs each file it scans;
#   the profile turns that logger on, into a file of its own, for the task's duration);
# - **rows written**: from the new commits' own metrics;
# - **peak memory** of the two processes a local run has: the Spark JVM (the driver and,
#   locally, its executors) and this Python process (where pandas holds training rows).
#
# A profile reads the local session's internals (its status tracker, its log, the
# warehouse folder), so it runs with the in-process executor on a `local` target. On
# Databricks, the Spark UI and the query history give the same figures per task.

# %%
#| default_exp profile

# %%
#| export
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

from pyspark.sql import SparkSession

from dbxml.config import DbxmlError, Target
from dbxml.spark import get_spark
from dbxml.tables import rows_added

# %%
#| hide
from fastcore.test import test_eq, test_fail

from dbxml.config import scratch_target, with_overrides


# %% [markdown]
# ## One task's figures

# %%
#| export
@dataclass
class TaskProfile:
    "What one task cost."
    run: str  # the run's label, e.g. the month
    task: str  # the task's key
    seconds: float = 0.0
    spark_jobs: int = 0
    delta_commits: int = 0
    log_files_read: int = 0  # Delta log files (commits, checkpoints) the task's scans read
    data_files_read: int = 0  # data files (Parquet) the task's scans read
    rows_written: int = 0  # rows the task's commits added (copied rows not counted)
    jvm_peak_mb: int = 0  # the Spark JVM's peak resident memory during the task, MiB (Linux; else 0)
    python_peak_mb: int = 0  # this Python process's peak resident memory during the task, MiB (Linux; else 0)


# %% [markdown]
# The counts come from three places. New commits are the `_delta_log/*.json` files that
# were not there before; each carries its operation's metrics, so the rows it wrote need
# no scan:

# %%
#| export
def _commit_files(storage_root: Path) -> set[Path]:
    "Every Delta commit file under `storage_root`."
    return set(Path(storage_root).glob("**/_delta_log/*.json"))

def _commit_rows(commit: Path) -> int:
    "The rows commit file `commit` added (see `dbxml.tables.rows_added`)."
    for line in commit.read_text().splitlines():
        info = json.loads(line).get("commitInfo")
        if info is not None:
            return rows_added(info.get("operationMetrics", {}))
    return 0


# %% [markdown]
# The files a scan reads are in Spark's own log: its file scan logs one line per file at
# level INFO. dbxml's log configuration ([Spark](01_spark.ipynb)) sends that logger to
# `logs/file-scans.log` in the target's home and keeps it off; a profile turns it on
# while it measures.

# %%
#| export
SCAN_LOGGER = "org.apache.spark.sql.execution.datasources.FileScanRDD"

def _set_scan_logging(spark: SparkSession, on: bool) -> None:
    "Turn the file scan logger on (INFO) or off."
    log4j = spark.sparkContext._jvm.org.apache.logging.log4j
    log4j.core.config.Configurator.setLevel(SCAN_LOGGER, log4j.Level.INFO if on else log4j.Level.OFF)

def _scan_lines(log: Path, offset: int) -> list[str]:
    "The lines of the scan log after byte `offset`."
    if not log.exists():
        return []
    with open(log, "rb") as file:
        file.seek(offset)
        return file.read().decode(errors="replace").splitlines()


# %% [markdown]
# Memory comes from Linux: each process's peak resident memory (`VmHWM` in
# `/proc/<pid>/status`), which writing `5` to `/proc/<pid>/clear_refs` resets, so the peak
# is the task's own. Where there is no `/proc` (or no right to reset it), the figure is 0.

# %%
#| export
def _reset_peak_memory(pid: int) -> None:
    "Start a new peak of resident memory for process `pid` (Linux); elsewhere, nothing."
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass

def _peak_memory_mb(pid: int) -> int:
    "The peak resident memory of process `pid` since its last reset, in MiB (0 where Linux does not say)."
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    peak = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    return round(int(peak[0]) / 1024) if peak else 0


# %%
_reset_peak_memory(os.getpid())
ballast = b"x" * (200 * 2**20)  # 200 MiB, every page written
assert _peak_memory_mb(os.getpid()) >= 200
del ballast
test_eq(_peak_memory_mb(-1), 0)  # no such process: no figure


# %% [markdown]
# ## Measuring
#
# `profiling` measures the block: it puts the block's Spark jobs in a job group of its
# own, notes the commit files and the end of the scan log, and fills the
# `TaskProfile` when the block ends, whether it succeeded or not.

# %%
#| export
@contextmanager
def profiling(target: Target,  # a `local` target: its session, warehouse and logs are measured
              run: str,  # the run's label, e.g. the month
              task: str,  # the task's key
             ) -> Iterator[TaskProfile]:
    "Within the block, count what the target's local session does; the `TaskProfile` is filled when it ends."
    if target.spark != "local":
        raise DbxmlError(f"a profile reads the local session's own counters; target {target.name!r} runs on "
                         f"{target.spark}. Profile a local target (dbxml run --profile --target local).")
    spark = get_spark(target)
    context = spark.sparkContext
    group = f"dbxml-profile-{run}-{task}-{time.monotonic_ns()}"
    log = Path(target.home) / "logs" / "file-scans.log"
    profile = TaskProfile(run, task)
    before, offset = _commit_files(target.storage_root), log.stat().st_size if log.exists() else 0
    previous = context.getLocalProperty("spark.jobGroup.id")
    context.setLocalProperty("spark.jobGroup.id", group)
    _set_scan_logging(spark, True)
    processes = {"jvm": context._jvm.ProcessHandle.current().pid(), "python": os.getpid()}
    for pid in processes.values():
        _reset_peak_memory(pid)
    started = time.perf_counter()
    try:
        yield profile
    finally:
        profile.seconds = round(time.perf_counter() - started, 2)
        _set_scan_logging(spark, False)
        context.setLocalProperty("spark.jobGroup.id", previous)
        profile.spark_jobs = len(context.statusTracker().getJobIdsForGroup(group))
        new = _commit_files(target.storage_root) - before
        profile.delta_commits, profile.rows_written = len(new), sum(_commit_rows(commit) for commit in new)
        files = [line for line in _scan_lines(log, offset) if line.startswith("Reading File path:")]
        profile.log_files_read = sum("/_delta_log/" in line for line in files)
        profile.data_files_read = len(files) - profile.log_files_read
        profile.jvm_peak_mb, profile.python_peak_mb = (_peak_memory_mb(pid) for pid in processes.values())


# %% [markdown]
# A write and two reads of a new table: the write is one job group's worth of Spark jobs
# and one commit of 1,000 rows; a count reads the table's log, then its data files.

# %%
scratch = scratch_target()
spark = get_spark(scratch)
spark.sql("CREATE DATABASE IF NOT EXISTS profile_example")
with profiling(scratch, "example", "write") as written:
    spark.range(1000).write.format("delta").mode("overwrite").saveAsTable("profile_example.numbers")
with profiling(scratch, "example", "read") as read:
    test_eq(spark.table("profile_example.numbers").count(), 1000)
    test_eq(spark.table("profile_example.numbers").where("id % 2 = 0").count(), 500)
print(written, read, sep="\n")
test_eq((written.delta_commits, written.rows_written), (1, 1000))
assert written.spark_jobs >= 1 and read.spark_jobs >= 2
test_eq((read.delta_commits, read.rows_written), (0, 0))
assert read.data_files_read >= 1 and read.log_files_read >= 0
assert written.jvm_peak_mb > 100 and written.python_peak_mb > 50  # a JVM and an interpreter with pyspark loaded
test_fail(lambda: profiling(with_overrides(scratch, spark="connect", spark_remote="sc://localhost:15002"), "x", "y").__enter__(),
          contains="a profile reads the local session's own counters")


# %% [markdown]
# ## An executor that measures
#
# `ProfilingExecutor` wraps the in-process executor of [the runner](32_runner.ipynb):
# each task runs exactly as it would, inside `profiling`. `dbxml run --profile` uses it.

# %%
#| export
class ProfilingExecutor:
    "Run each task with `inner` (an `InProcessExecutor`), measured; the figures collect in `profiles`."

    def __init__(self, inner, target: Target):
        self.inner, self.target, self.profiles = inner, target, []

    def run(self, task, parameters: dict, folder: Path, on_cell=None):
        "What `inner.run` returns; the task's `TaskProfile` is appended to `profiles`."
        with profiling(self.target, folder.name, task.key) as profile:
            outcome = self.inner.run(task, parameters, folder, on_cell)
        self.profiles.append(profile)
        return outcome


# %% [markdown]
# ## The table
#
# The figures as a Markdown table, one row per task run, with a total: what the
# benchmark notes and the architecture's quality page quote.

# %%
#| export
def profile_table(profiles: list[TaskProfile]) -> str:
    "The profiles as a Markdown table, with a total row (sums; for the peaks, the largest)."
    names = [item.name for item in fields(TaskProfile)]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for profile in profiles:
        lines.append("| " + " | ".join(str(getattr(profile, name)) for name in names) + " |")
    totals = [max(getattr(profile, name) for profile in profiles) if name.endswith("_peak_mb")
              else round(sum(getattr(profile, name) for profile in profiles), 2) for name in names[2:]]
    lines.append("| total | | " + " | ".join(str(value) for value in totals) + " |")
    return "\n".join(lines)


# %%
table = profile_table([written, read])
print(table)
test_eq(table.splitlines()[0], "| run | task | seconds | spark_jobs | delta_commits | log_files_read | data_files_read "
                               "| rows_written | jvm_peak_mb | python_peak_mb |")
total = [cell.strip() for cell in table.splitlines()[-1].strip("|").split("|")]
test_eq(total[7:], ["1000", str(max(written.jvm_peak_mb, read.jvm_peak_mb)),
                    str(max(written.python_peak_mb, read.python_peak_mb))])
