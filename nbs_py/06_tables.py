# %% [markdown]
# # Table writes
# > The few ways dbxml writes a table, each safe to repeat and never half done.
#
# Pipeline stages do not call `df.write` themselves; they call one of these helpers, so
# that every write has the same guarantees.

# %% [markdown]
# - **atomic**: each write is one Delta commit, so a process killed mid-write leaves the
#   table at its previous version;
# - **repeatable**: writing the same batch again changes nothing.
#
# `append_once` appends a batch exactly once using Delta's own idempotent writes: each
# commit records an application id and version (`txnAppId`, `txnVersion`), and Delta
# skips a write whose pair it has already committed. We use one application id per
# table and batch, so batches can arrive in any order and a rerun of any of them is a
# no-op, even when two processes race.

# %%
#| default_exp tables

# %%
#| export
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

# %%
#| hide
from fastcore.test import test_eq

from dbxml.catalog import ensure_schema, table_name
from dbxml.config import scratch_target
from dbxml.spark import get_spark


# %%
#| export
def table_version(spark: SparkSession, name: str) -> int | None:
    "The latest Delta version of table `name`, or None if it does not exist."
    if not spark.catalog.tableExists(name):
        return None
    return spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()["version"]


# %%
#| export
def with_ingestion_metadata(frame: DataFrame,  # rows as read from a source file
                            source_file: str,  # where they came from
                            batch: str,  # the batch they belong to, e.g. a month
                           ) -> DataFrame:
    "`frame` with `_source_file`, `_batch` and `_ingested_at` columns: where, which batch and when."
    return (frame.withColumn("_source_file", F.lit(source_file))
                 .withColumn("_batch", F.lit(batch))
                 .withColumn("_ingested_at", F.current_timestamp()))


# %%
#| export
def append_once(frame: DataFrame,  # the batch's rows
                name: str,  # the table, as `TableName.on(target)` gives it
                batch: str,  # the batch's identity, e.g. `2013-05` or a file checksum
               ) -> bool:
    "Append `frame` to Delta table `name` unless batch `batch` was appended before; True if it was written now."
    spark = frame.sparkSession
    before = table_version(spark, name)
    (frame.write.format("delta").mode("append")
          .option("txnAppId", f"{name}:{batch}").option("txnVersion", 0)
          .saveAsTable(name))
    return table_version(spark, name) != before


# %% [markdown]
# The same batch appended twice is written once; another batch is added, and a batch
# may arrive late:

# %%
scratch = scratch_target()
spark = get_spark(scratch)
ensure_schema(spark, scratch)
name = table_name(scratch, "example_appends").on(scratch)
spark.sql(f"DROP TABLE IF EXISTS {name}")
february = with_ingestion_metadata(spark.range(3), "numbers.csv", "2013-02")
test_eq(append_once(february, name, "2013-02"), True)
test_eq(append_once(february, name, "2013-02"), False)
test_eq(append_once(with_ingestion_metadata(spark.range(2), "numbers.csv", "2013-01"), name, "2013-01"), True)
rows = spark.table(name).groupBy("_batch").count().orderBy("_batch").collect()
test_eq([(row["_batch"], row["count"]) for row in rows], [("2013-01", 2), ("2013-02", 3)])
