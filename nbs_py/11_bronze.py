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
# What bronze refuses outright, with one clear error: a file that breaks [the landing
# contract](10_contract.ipynb) (missing, not text, another encoding, a changed header,
# a corrupt archive). A line that is not valid UTF-8 in an otherwise good file is kept,
# as the contract found it: whole in `_corrupt_record` (undecodable bytes shown as
# `\xe9`) and exactly in `_raw_bytes` (base64), for silver to quarantine as `valid_utf8`.
# Spark's own decoder would have replaced the byte with U+FFFD and said nothing.

# %%
#| default_exp bronze

# %%
#| export
from __future__ import annotations

import base64
import os
import zipfile
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from dbxml.catalog import ensure_schema, table_name
from dbxml.config import DbxmlError, Target
from dbxml.contract import CORRUPT_RECORD, RAW_BYTES, REPLACEMENT, Contract, FileCheck, check_file, spark_charset
from dbxml.sources import landed_drop
from dbxml.tables import append_once, commit_note, latest_commit, with_ingestion_metadata
from dbxml.usecase import use_case_of

# %%
#| hide
import gzip
import tempfile
from dataclasses import replace

from fastcore.test import test_eq, test_fail

from dbxml.config import scratch_target
from dbxml.contract import CONTRACTS
from dbxml.sources import flights_file, land_source_files
from dbxml.tables import rows_by_batch
from dbxml.spark import get_spark


# %% [markdown]
# ## Reading a landed file
#
# Every column is read as text, and Spark's permissive mode puts a line with too few
# or too many fields, whole, into `_corrupt_record` instead of dropping it. A `.csv.gz`
# drop Spark reads as it is; the one CSV of a `.zip` drop is first unpacked next to it
# (Spark has no zip reader), into `unzipped/`, written atomically.

# %%
#| export
def readable_path(drop: Path) -> Path:
    "The path Spark reads for `drop`: the drop itself, or the CSV unpacked from a `.zip` drop."
    drop = Path(drop)
    if drop.suffix != ".zip":
        return drop
    unpacked = drop.parent / "unzipped" / f"{drop.stem}.csv"
    with zipfile.ZipFile(drop) as archive:  # the contract checked it holds exactly one CSV
        member = archive.infolist()[0]
        if not unpacked.exists() or unpacked.stat().st_size != member.file_size or \
                unpacked.stat().st_mtime < drop.stat().st_mtime:
            unpacked.parent.mkdir(parents=True, exist_ok=True)
            partial = unpacked.with_name(f".{unpacked.name}.partial")
            with archive.open(member) as source, open(partial, "wb") as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
            os.replace(partial, unpacked)
    return unpacked

def read_raw_csv(spark: SparkSession,
                 path: Path,  # a landed drop that keeps its contract
                 contract: Contract,  # its columns and encoding
                ) -> DataFrame:
    "The file's rows, every field as text, with malformed lines kept whole in `_corrupt_record`."
    schema = StructType([StructField(column, StringType()) for column in contract.columns]
                        + [StructField(CORRUPT_RECORD, StringType())])
    return spark.read.csv(str(readable_path(path)), header=True, schema=schema, mode="PERMISSIVE",
                          columnNameOfCorruptRecord=CORRUPT_RECORD, encoding=spark_charset(contract.encoding))


# %%
scratch = scratch_target()
spark = get_spark(scratch)
folder = Path(tempfile.mkdtemp())
(folder / "messy.csv").write_text("carrier,name\n9E,Endeavor Air Inc.\nAA\nB6,JetBlue,extra\nNA,NA\n")
rows = read_raw_csv(spark, folder / "messy.csv", CONTRACTS["airlines"]).collect()
test_eq(len(rows), 4)  # nothing dropped
test_eq([row[CORRUPT_RECORD] for row in rows], [None, "AA", "B6,JetBlue,extra", None])
test_eq(rows[3]["carrier"], "NA")  # kept as text: silver decides what NA means


# %% [markdown]
# The lines the contract found undecodable replace the rows Spark made of them: the
# same number of rows, each with the line's exact bytes. The counts must agree, or
# the batch is refused rather than half right.

# %%
#| export
def with_undecodable_lines(spark: SparkSession,
                           frame: DataFrame,  # `read_raw_csv` of the file
                           check: FileCheck,  # the contract's findings for it
                           contract: Contract,
                          ) -> DataFrame:
    "`frame` with `_raw_bytes`, its undecodable lines replaced by rows holding their exact bytes."
    frame = frame.withColumn(RAW_BYTES, F.lit(None).cast("string"))
    if not check.undecodable:
        return frame
    text = F.concat_ws("", *[F.col(column) for column in [*contract.columns, CORRUPT_RECORD]])
    altered = F.instr(text, REPLACEMENT) > 0
    found = frame.where(altered).count()
    if found != len(check.undecodable):
        raise DbxmlError(f"{check.path}: the contract found {len(check.undecodable)} undecodable line(s) but Spark "
                         f"read {found}; nothing was ingested. Look at the lines "
                         f"{', '.join(str(number) for number, _ in check.undecodable)}.")
    lines = [(line.decode(contract.encoding, "backslashreplace"), base64.b64encode(line).decode("ascii"))
             for _, line in check.undecodable]
    kept = spark.createDataFrame(lines, f"{CORRUPT_RECORD} string, {RAW_BYTES} string")
    return frame.where(~altered).unionByName(kept, allowMissingColumns=True)


# %%
(folder / "latin.csv").write_bytes(b"carrier,name\n9E,Endeavor Air Inc.\nZZ,Caf\xe9 Air\n")
check = check_file(folder / "latin.csv", CONTRACTS["airlines"])
rows = with_undecodable_lines(spark, read_raw_csv(spark, folder / "latin.csv", CONTRACTS["airlines"]), check,
                              CONTRACTS["airlines"]).collect()
test_eq([(row["carrier"], row[CORRUPT_RECORD], row[RAW_BYTES]) for row in rows],
        [("9E", None, None), (None, "ZZ,Caf\\xe9 Air", "WlosQ2Fm6SBBaXI=")])
test_eq(base64.b64decode(rows[1][RAW_BYTES]), b"ZZ,Caf\xe9 Air")
assert not any(REPLACEMENT in str(value) for row in rows for value in row)

# %% [markdown]
# A source declared to send Latin-1 is read as Latin-1, so the same byte is an `é`:

# %%
latin1 = replace(CONTRACTS["airlines"], encoding="latin-1")
test_eq(check_file(folder / "latin.csv", latin1).undecodable, [])
test_eq([row["name"] for row in read_raw_csv(spark, folder / "latin.csv", latin1).collect()],
        ["Endeavor Air Inc.", "Café Air"])


# %% [markdown]
# ## Ingesting
#
# Each append carries a commit note with its batch, so a batch already in bronze is
# found in the table's history (its log, no data read) and not read or written again;
# the note's commit also says how many rows the batch added. A table written before
# the notes existed falls back on `append_once`'s own guarantee.

# %%
#| export
def ingest_file(spark: SparkSession, target: Target,
                contract: Contract,  # the source's
                check: FileCheck,  # the landed drop, checked by `check_file`
                batch: str,  # the batch identity
               ) -> dict:
    "Append one landed file to `bronze_<source>` as batch `batch` (once); returns what happened."
    source = contract.name
    ensure_schema(spark, target)
    name = table_name(target, f"bronze_{source}").on(target)
    done, written = latest_commit(spark, name, stage="bronze", batch=batch), False
    if done is None:  # not appended yet (or by a release that left no note: then Delta's own check skips it)
        rows = with_undecodable_lines(spark, read_raw_csv(spark, check.path, contract), check, contract)
        with commit_note(spark, {"stage": "bronze", "batch": batch}):
            written = append_once(with_ingestion_metadata(rows, str(check.path), batch), name, batch)
        done = latest_commit(spark, name, stage="bronze", batch=batch)
    count = done["rows"] if done else spark.table(name).where(F.col("_batch") == batch).count()
    return {"source": source, "table": name, "batch": batch, "rows": count, "written": written,
            "undecodable": len(check.undecodable)}


# %%
#| export
def ingest_month(spark: SparkSession, target: Target,
                 month: str,  # `YYYY-MM`
                ) -> dict:
    "Append the month's fact file (the demo's flights) to its bronze table, once; checked against its contract first."
    fact = use_case_of(target).fact
    check = check_file(landed_drop(target, fact.name, month), fact)
    return ingest_file(spark, target, fact, check, month)

def ingest_dimensions(spark: SparkSession, target: Target) -> list[dict]:
    "Append each dimension file to its bronze table, once per distinct file content (its checksum is the batch)."
    dimensions = use_case_of(target).dimensions
    checks = [(contract, check_file(landed_drop(target, contract.name), contract)) for contract in dimensions]
    return [ingest_file(spark, target, contract, check, check.sha256[:16]) for contract, check in checks]


# %% [markdown]
# On the real January file: every line lands, a second ingestion writes nothing, a
# month that never landed is one clear error, and an empty month is an empty batch. A
# month delivered gzip-compressed lands the same rows.

# %%
land_source_files(scratch)
january = ingest_month(spark, scratch, "2013-01")
test_eq((january["rows"], january["written"]), (27_004, True))
again = ingest_month(spark, scratch, "2013-01")
test_eq((again["rows"], again["written"]), (27_004, False))
test_fail(lambda: ingest_month(spark, scratch, "2014-01"), contains="land the source files first")
flights_file(scratch, "2014-01").write_text(",".join(CONTRACTS["flights"].columns) + "\n")  # a month with no flights
test_eq(ingest_month(spark, scratch, "2014-01")["rows"], 0)
february = flights_file(scratch, "2013-02")
february.with_name("2013-02.csv.gz").write_bytes(gzip.compress(february.read_bytes()))
february.unlink()
test_eq(ingest_month(spark, scratch, "2013-02")["rows"], 24_951)
by_batch = rows_by_batch(spark, january["table"])  # each append's rows, from bronze's history alone
test_eq({batch: rows for batch, rows in by_batch.items() if batch.startswith("2013")}, {"2013-01": 27_004, "2013-02": 24_951})
dimensions = {result["table"].split(".")[-1]: result["rows"] for result in ingest_dimensions(spark, scratch)}
test_eq(dimensions, {"bronze_airlines": 16, "bronze_airports": 1458, "bronze_planes": 3322, "bronze_weather": 26115})

# %% [markdown]
# ## As a job task
#
# This stage runs as the `lakehouse` task of the bundle's `monthly` job, through the
# pipeline notebook [`pipelines/lakehouse.ipynb`](pipelines/lakehouse.ipynb), which declares its
# parameters; `dbxml run` runs that job locally (see [the runner](32_runner.ipynb)).
