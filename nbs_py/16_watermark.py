# %% [markdown]
# # The watermark
# > Which month a scheduled run processes: the oldest month that has landed and has not
# > been processed yet.
#
# The monthly job runs on a schedule, and a schedule cannot say which month it is for.
# So its `month` parameter defaults to `next`, and the first task resolves it: the
# oldest month whose flights have landed (in the landing zone, in any drop form) and
# that is not in the `processed_months` table. The job's last task, `record_month`,
# adds the month to that table, and it runs only when no task of the run failed. So a
# month that failed is tried again by the next run, and a month that completed is not
# redone. When every landed month is processed, the run says there is nothing new and
# ends without error.
#
# An explicit month (`month=2013-05`, or a range locally) is a backfill, recorded like any
# other month. On Databricks it runs whatever the table says; a local `dbxml run` skips
# the months the table already holds, and says so, unless `--again` ([the
# runner](32_runner.ipynb)). Why this design and not the
# run's date: `nbs/decisions/0016-scheduled-month.md`.

# %%
#| default_exp watermark

# %%
#| export
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from dbxml.catalog import ensure_schema
from dbxml.config import Target
from dbxml.contract import DROP_SUFFIXES
from dbxml.sources import MONTH, check_month, landing_dir
from dbxml.tables import Column, TableSpec, replace_rows
from dbxml.usecase import use_case_of

# %%
#| hide
import tempfile
from pathlib import Path

from fastcore.test import test_eq, test_fail

from dbxml.config import scratch_target, with_overrides
from dbxml.spark import get_spark


# %% [markdown]
# ## What has landed
#
# A month has landed when its flights file is in the landing zone, as `.csv`,
# `.csv.gz` or `.zip` (the drop forms [the landing contract](10_contract.ipynb) accepts).
# Whether the file is good is the contract's business, when the month is built.

# %%
#| export
def landed_months(target: Target) -> list[str]:
    "The months whose fact files (the demo's flights) have landed in `target`'s landing zone, oldest first."
    folder = landing_dir(target) / use_case_of(target).fact.name
    if not folder.is_dir():
        return []
    stems = {path.name.removesuffix(suffix) for path in folder.iterdir() for suffix in DROP_SUFFIXES
             if path.name.endswith(suffix)}
    return sorted(stem for stem in stems if MONTH.fullmatch(stem))


# %%
landing = with_overrides(scratch_target(), raw_root=tempfile.mkdtemp(prefix="dbxml-landing-"))
test_eq(landed_months(landing), [])
(Path(landing.raw_root) / "flights").mkdir()
for name in ("2013-02.csv.gz", "2013-01.csv", "2013-03.zip", "notes.txt", "2013-13.csv", ".months"):
    (Path(landing.raw_root) / "flights" / name).write_text("")
test_eq(landed_months(landing), ["2013-01", "2013-02", "2013-03"])

# %% [markdown]
# ## The next month
#
# The choice itself needs no Spark: the oldest landed month that is not processed. A
# month processed out of order (a backfill) is simply skipped when the schedule gets
# there; a gap (a month that failed) is filled before anything later.

# %%
#| export
NEXT = "next"  # the `month` parameter of a scheduled run

def next_month(landed: list[str],  # months that have landed
               processed: list[str],  # months already processed
              ) -> str | None:
    "The oldest landed month not yet processed; None when there is nothing new."
    waiting = sorted(set(landed) - set(processed))
    return waiting[0] if waiting else None


# %%
test_eq(next_month(["2013-01", "2013-02"], []), "2013-01")
test_eq(next_month(["2013-01", "2013-02", "2013-03"], ["2013-01", "2013-03"]), "2013-02")  # the gap first
test_eq(next_month(["2013-01"], ["2013-01"]), None)

# %% [markdown]
# ## The table
#
# `processed_months` has one row per month the job completed: when, which run, and the
# volume the lakehouse task found (an empty or short month is processed too: its data
# is in the lakehouse, and the job went on as the volume rule says). Recording a month
# twice replaces its row, so a rerun of a month leaves one row.

# %%
#| export
PROCESSED_SPEC = TableSpec(
    "processed_months", "The watermark: one row per month the monthly job completed without a failed task.",
    (Column("month", "STRING", "The month, YYYY-MM.", nullable=False),
     Column("volume", "STRING", "The lakehouse task's volume finding: ok, empty or short."),
     Column("run", "STRING", "The run that completed it: a Databricks job run id, or `local`."),
     Column("processed_at", "TIMESTAMP", "When the run completed the month.")))

def processed_months(spark: SparkSession, target: Target) -> list[str]:
    "The months in `processed_months`, oldest first (none before the first month completes)."
    table = PROCESSED_SPEC.on(target)
    if not table.exists(spark):
        return []
    return sorted(row.month for row in table.read(spark).select("month").collect())

def record_month(spark: SparkSession, target: Target,
                 month: str,  # the month the run completed, `YYYY-MM`
                 volume: str = "ok",  # the lakehouse task's volume finding
                 run: str = "local",  # the job run, for the audit trail
                ) -> None:
    "Add `month` to `processed_months` (replacing its row if it is there): the schedule will not pick it again."
    check_month(month)
    ensure_schema(spark, target)
    row = spark.createDataFrame([{"month": month, "volume": volume, "run": run}])
    replace_rows(row.withColumn("processed_at", F.current_timestamp()), PROCESSED_SPEC.on(target), {"month": month},
                 note={"stage": "watermark", "month": month})

def resolve_month(spark: SparkSession, target: Target,
                  month: str,  # the run's `month` parameter: `YYYY-MM`, or `next`
                 ) -> str | None:
    "The month a run processes: `month` itself, or for `next` the oldest landed, unprocessed one (None: nothing new)."
    if month != NEXT:
        return check_month(month)
    return next_month(landed_months(target), processed_months(spark, target))


# %% [markdown]
# A scratch lakehouse whose landing zone holds three months (months no other example
# uses): the schedule takes them in order, a rerun of a month keeps one row, and after
# the last one there is nothing new.

# %%
spark = get_spark(scratch_target())
months = with_overrides(scratch_target(), raw_root=tempfile.mkdtemp(prefix="dbxml-landing-"))
(Path(months.raw_root) / "flights").mkdir()
for month in ("2016-01", "2016-02", "2016-03"):
    (Path(months.raw_root) / "flights" / f"{month}.csv").write_text("")
before = set(processed_months(spark, months))  # other examples in this process may have recorded real months
record_month(spark, months, "2016-02")  # a backfill of February
test_eq(resolve_month(spark, months, NEXT), "2016-01")
record_month(spark, months, "2016-01")
record_month(spark, months, "2016-01", volume="short")  # a rerun replaces its row
test_eq(resolve_month(spark, months, NEXT), "2016-03")
record_month(spark, months, "2016-03")
test_eq(resolve_month(spark, months, NEXT), None)
test_eq(sorted(set(processed_months(spark, months)) - before), ["2016-01", "2016-02", "2016-03"])
test_eq(len(processed_months(spark, months)), len(before) + 3)
test_eq(resolve_month(spark, months, "2013-05"), "2013-05")  # a backfill, whatever the table says
test_fail(lambda: resolve_month(spark, months, "May"), contains="May")
