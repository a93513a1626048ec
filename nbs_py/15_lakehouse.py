# %% [markdown]
# # The lakehouse run
# > Bronze, silver and gold for a range of months, with the counts that reconcile.
#
# This is the lakehouse half of the main job: land the files, then for each month
# ingest it into bronze, refine it into silver and build its gold. Each step is the
# stage notebook's own function, so running a range here and running the stage
# notebooks one by one (as the job graph does) write the same tables.

# %%
#| default_exp lakehouse

# %%
#| export
from __future__ import annotations

import time

from pyspark.sql import SparkSession

from dbxml.bronze import ingest_dimensions, ingest_month
from dbxml.config import DbxmlError, Target
from dbxml.gold import build_month
from dbxml.silver import refine_dimensions, refine_month
from dbxml.sources import check_month, land_source_files, months_between

# %%
#| hide
from fastcore.test import test_eq, test_fail

from dbxml.config import scratch_target
from dbxml.spark import get_spark


# %%
#| export
def parse_months(text: str,  # `2013-05`, or a range `2013-01..2013-12`
                ) -> list[str]:
    "The months `text` names, in order."
    first, separator, last = text.partition("..")
    months = months_between(check_month(first), check_month(last)) if separator else [check_month(text)]
    if not months:
        raise DbxmlError(f"the range {text} is empty: write the first month first, e.g. 2013-01..2013-12")
    return months


# %%
test_eq(parse_months("2013-05"), ["2013-05"])
test_eq(parse_months("2013-11..2014-02"), ["2013-11", "2013-12", "2014-01", "2014-02"])
test_fail(lambda: parse_months("2013-12..2013-01"), contains="is empty")
test_fail(lambda: parse_months("2013-13"), contains="YYYY-MM")


# %%
#| export
def run_month(spark: SparkSession, target: Target,
              month: str,  # `YYYY-MM`
             ) -> dict:
    "Bronze, silver and gold for one month (the dimensions must be refined); returns counts and seconds per stage."
    started = time.perf_counter()
    bronze = ingest_month(spark, target, month)
    after_bronze = time.perf_counter()
    silver = refine_month(spark, target, month)
    after_silver = time.perf_counter()
    gold = build_month(spark, target, month)
    done = time.perf_counter()
    return {"month": month, "bronze": bronze["rows"], "silver": silver["silver"], "quarantined": silver["quarantined"],
            "features": gold["features"], "mart_rows": gold["mart_rows"],
            "bronze_s": after_bronze - started, "silver_s": after_silver - after_bronze, "gold_s": done - after_silver}

def run_lakehouse(spark: SparkSession, target: Target,
                  months: list[str],  # e.g. `parse_months("2013-01..2013-12")`
                  progress=print,  # called with a line after each step; None for silence
                 ) -> list[dict]:
    "Land the files, refresh the dimensions, then run each month; returns one row of counts per month."
    say = progress or (lambda line: None)
    land_source_files(target)
    ingest_dimensions(spark, target)
    for counts in refine_dimensions(spark, target):
        say(f"silver_{counts['source']}: {counts['silver']} rows, {counts['quarantined']} quarantined")
    rows = []
    for month in months:
        rows.append(run_month(spark, target, month))
        say(format_counts(rows[-1:], header=not rows[:-1], total=False))
    return rows

def format_counts(rows: list[dict],  # `run_month` results
                  header: bool = True,  # start with the column names
                  total: bool = True,  # end with a total line
                 ) -> str:
    "The counts as an aligned text table."
    columns = ["month", "bronze", "silver", "quarantined", "features", "mart_rows", "bronze_s", "silver_s", "gold_s"]
    def line(values):
        return "  ".join(f"{value:>11.1f}" if isinstance(value, float) else f"{value!s:>11}" for value in values)
    lines = [line(columns)] if header else []
    lines += [line([row[column] for column in columns]) for row in rows]
    if total and rows:
        lines.append(line(["total", *[sum(row[column] for row in rows) for column in columns[1:]]]))
    return "\n".join(lines)


# %% [markdown]
# Two months on the scratch lakehouse; every month reconciles (the stages raise if not):

# %%
scratch = scratch_target()
spark = get_spark(scratch)
rows = run_lakehouse(spark, scratch, parse_months("2013-01..2013-02"))
test_eq([(row["month"], row["bronze"]) for row in rows], [("2013-01", 27_004), ("2013-02", 24_951)])
assert all(row["bronze"] == row["silver"] + row["quarantined"] and row["features"] == row["silver"] for row in rows)
print(format_counts(rows))

# %% [markdown]
# ## As a job task
#
# This stage runs as the `lakehouse` task of the bundle's `monthly` job, through the
# pipeline notebook [`pipelines/lakehouse.ipynb`](pipelines/lakehouse.ipynb), which declares its
# parameters; `dbxml run` runs that job locally (see [the runner](32_runner.ipynb)).
