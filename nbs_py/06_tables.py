# %% [markdown]
# # Table writes
# > The few ways dbxml writes a table, each safe to repeat and never half done.
#
# Pipeline stages do not call `df.write` themselves; they call one of these helpers, so
# that every write has the same guarantees.

# %% [markdown]
# - **atomic**: each write is one Delta commit, so a process killed mid-write leaves the
#   table at its previous version;
# - **repeatable**: writing the same batch again changes nothing;
# - **declared**: a table is created once from a `TableSpec` (columns, types, comments,
#   constraints, properties), so its documentation lives in the catalog next to the data.
#
# Three helpers cover every stage: `append_once` (bronze), `merge_rows` (an upsert on
# business keys: silver) and `replace_rows` (swap one slice, such as a month, for its
# new contents: quarantine and gold). All three are SQL or plain `DataFrameWriter`
# calls, so they run the same on classic Spark, on Spark Connect and on Databricks.
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

import json
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dbxml.catalog import table_name
from dbxml.config import DbxmlError, Target

# %%
#| hide
from fastcore.test import test_eq, test_fail

from dbxml.catalog import ensure_schema
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
          .option("mergeSchema", "true")  # a bronze column added by a later release joins the table
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


# %% [markdown]
# ## Declared tables
#
# A `TableSpec` is a table's contract: its columns with types and comments, its business
# keys, its `CHECK` constraints and its Delta properties (Change Data Feed, for
# instance). `spec.on(target)` is the table on one target: a `Table`, the handle the
# write helpers take, which knows the name Spark uses for it there. `ensure_table`
# creates the table from its spec if needed and adds any constraint it lacks; `conform`
# puts a frame's columns in the spec's order and types.

# %%
#| export
@dataclass(frozen=True)
class Column:
    "One column of a declared table."
    name: str
    type: str  # a Spark SQL type, e.g. `INT`, `DOUBLE`, `TIMESTAMP`
    comment: str
    nullable: bool = True

@dataclass(frozen=True)
class TableSpec:
    "A declared Delta table: what it holds, its columns, keys, constraints and properties."
    table: str  # the short name; `spec.on(target)` places it
    comment: str
    columns: tuple[Column, ...]
    keys: tuple[str, ...] = ()  # the business key: one row per key
    constraints: dict[str, str] = field(default_factory=dict)  # name -> SQL that every row satisfies
    properties: dict[str, str] = field(default_factory=dict)  # Delta table properties

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def ddl(self, without: tuple[str, ...] = ()) -> str:
        "The columns as a Spark DDL schema, e.g. for `createDataFrame`; `without` leaves some out."
        return ", ".join(f"{column.name} {column.type}" for column in self.columns if column.name not in without)

    def on(self, target: Target) -> Table:
        "This table on `target`."
        return Table(table_name(target, self.table).on(target), self)

@dataclass(frozen=True)
class Table:
    "A declared table on one target: the handle `merge_rows` and `replace_rows` take."
    name: str  # the name Spark knows it by on its target, e.g. `dbxml_dev.flights.silver_flights`
    spec: TableSpec

    def exists(self, spark: SparkSession) -> bool:
        return spark.catalog.tableExists(self.name)

    def read(self, spark: SparkSession) -> DataFrame:
        return spark.table(self.name)


# %%
#| export
def _quoted(text: str) -> str:
    "`text` as a SQL string literal."
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

def create_table_sql(name: str,  # the full table name
                     spec: TableSpec,
                    ) -> str:
    "The `CREATE TABLE IF NOT EXISTS` statement for `spec`, with its comments, properties and constraints."
    columns = ",\n  ".join(f"{column.name} {column.type}{'' if column.nullable else ' NOT NULL'} "
                           f"COMMENT {_quoted(column.comment)}" for column in spec.columns)
    # Delta keeps a CHECK constraint as the table property `delta.constraints.<name>`: set at creation, it costs
    # nothing, where each `ADD CONSTRAINT` afterwards is a commit and a scan (about 3 s on two cores)
    constraints = {f"delta.constraints.{name.lower()}": expression for name, expression in spec.constraints.items()}
    properties = ", ".join(f"{_quoted(key)} = {_quoted(value)}" for key, value in {**spec.properties, **constraints}.items())
    return (f"CREATE TABLE IF NOT EXISTS {name} (\n  {columns}\n) USING DELTA COMMENT {_quoted(spec.comment)}"
            + (f" TBLPROPERTIES ({properties})" if properties else ""))


# %%
example_spec = TableSpec("example_airlines", "Airlines by carrier code.",
                         (Column("carrier", "STRING", "Two-letter carrier code.", nullable=False),
                          Column("name", "STRING", "The airline's name, e.g. 'Endeavor Air Inc.'")),
                         keys=("carrier",), constraints={"carrier_code": "length(carrier) = 2"},
                         properties={"delta.enableChangeDataFeed": "true"})
print(create_table_sql("spark_catalog.dev__flights.example_airlines", example_spec))
test_eq(example_spec.ddl(without=("name",)), "carrier STRING")
assert "COMMENT 'The airline\\'s name, e.g. \\'Endeavor Air Inc.\\''" in create_table_sql("t", example_spec)
assert "'delta.constraints.carrier_code' = 'length(carrier) = 2'" in create_table_sql("t", example_spec)


# %%
#| export
def table_constraints(spark: SparkSession, name: str) -> dict[str, str]:
    "The `CHECK` constraints of Delta table `name`: constraint name -> expression."
    prefix = "delta.constraints."
    return {row["key"][len(prefix):]: row["value"] for row in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()
            if row["key"].startswith(prefix)}

def ensure_table(spark: SparkSession,
                 name: str,  # the full table name, as `TableName.on(target)` gives it
                 spec: TableSpec,
                ) -> str:
    "Create table `name` from `spec` unless it exists, and add the constraints it lacks; returns `name`."
    # a table created by an older release, or by an engine that dropped the properties, gets them here
    spark.sql(create_table_sql(name, spec))
    present = table_constraints(spark, name)
    for constraint, expression in spec.constraints.items():
        if constraint.lower() not in present:
            spark.sql(f"ALTER TABLE {name} ADD CONSTRAINT {constraint} CHECK ({expression})")
    return name

def conform(frame: DataFrame, spec: TableSpec) -> DataFrame:
    "`frame`'s columns in `spec`'s order, cast to its types; a missing column is a `DbxmlError`."
    missing = [column for column in spec.column_names if column not in frame.columns]
    if missing:
        raise DbxmlError(f"{spec.table}: the rows lack column(s) {', '.join(missing)}")
    return frame.select(*[F.col(column.name).cast(column.type).alias(column.name) for column in spec.columns])


# %% [markdown]
# The table is created once, with its comments in the catalog, and its constraint is
# enforced by Delta itself; running `ensure_table` again changes nothing:

# %%
airlines_table = example_spec.on(scratch)
test_eq(airlines_table.name, "spark_catalog.local__flights.example_airlines")
airlines = airlines_table.name
spark.sql(f"DROP TABLE IF EXISTS {airlines}")
ensure_table(spark, airlines, example_spec)
version = table_version(spark, airlines)
ensure_table(spark, airlines, example_spec)
test_eq(table_version(spark, airlines), version)
test_eq(list(table_constraints(spark, airlines)), ["carrier_code"])  # Delta keeps its own spelling of the SQL
comments = {row["col_name"]: row["comment"] for row in spark.sql(f"DESCRIBE TABLE {airlines}").collect()}
test_eq(comments["carrier"], "Two-letter carrier code.")
test_fail(lambda: spark.sql(f"INSERT INTO {airlines} VALUES ('ABC', 'too long a code')"), contains="carrier_code")
test_fail(lambda: conform(spark.range(1), example_spec), contains="lack column(s) carrier, name")
test_eq(version, 0)  # created with its constraint in one commit

# %% [markdown]
# A table made without the constraint (by an older release, say) gets it from `ensure_table`:

# %%
spark.sql(f"DROP TABLE {airlines}")
spark.sql(f"CREATE TABLE {airlines} (carrier STRING, name STRING) USING DELTA")
ensure_table(spark, airlines, example_spec)
test_eq(list(table_constraints(spark, airlines)), ["carrier_code"])

# %% [markdown]
# ## Commit notes
#
# Each Delta commit can carry a short user message. The stages use it to record what a
# write was made from (for instance the silver version a gold month was computed
# from), which leaves the table's contents free of run-specific values while the
# table's history still answers "where did this version come from".

# %%
#| export
COMMIT_NOTE = "spark.databricks.delta.commitInfo.userMetadata"

@contextmanager
def commit_note(spark: SparkSession,
                note: dict | None,  # recorded as JSON in the commit's `userMetadata`; None records nothing
               ):
    "Within the block, Delta commits of this session carry `note`."
    if note is None:
        yield
        return
    spark.conf.set(COMMIT_NOTE, json.dumps(note, sort_keys=True))
    try:
        yield
    finally:
        spark.conf.unset(COMMIT_NOTE)

def last_commit_note(spark: SparkSession, name: str) -> dict | None:
    "The note of the latest commit of table `name`, if it has one."
    note = spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()["userMetadata"]
    return json.loads(note) if note else None

def rows_added(metrics: dict) -> int:
    "The rows a commit added, from its operation metrics: rows written less rows copied from rewritten files."
    copied = metrics.get("numCopiedRows", metrics.get("numTargetRowsCopied", 0))  # replaceWhere's name, MERGE's
    return int(metrics.get("numOutputRows", 0)) - int(copied)

def rows_written(spark: SparkSession, name: str,
                 since: int | None = None,  # the table's version before the write: no commit since, no rows
                ) -> int:
    "The rows the latest commit of table `name` added, from Delta's log (no scan of the data)."
    latest = spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()
    return 0 if latest["version"] == since else rows_added(latest["operationMetrics"])

def latest_commit(spark: SparkSession,
                  name: str,  # the full table name
                  **match,  # what the note must say, e.g. `stage="silver", batch="2013-05"`
                 ) -> dict | None:
    "The newest commit of table `name` whose note says `match`: its `version`, `note` and the `rows` it added."
    if not spark.catalog.tableExists(name):
        return None
    history = spark.sql(f"DESCRIBE HISTORY {name}").select("version", "userMetadata", "operationMetrics")
    for row in history.collect():  # newest first; from the log alone, no data is read
        note = json.loads(row["userMetadata"]) if row["userMetadata"] else {}
        if note and all(note.get(key) == value for key, value in match.items()):
            return {"version": row["version"], "note": note, "rows": rows_added(row["operationMetrics"] or {})}
    return None

def rows_by_batch(spark: SparkSession,
                  name: str,  # an append-only table whose appends carry a `batch` note (bronze)
                 ) -> dict[str, int] | None:
    "The rows each batch added to table `name`, from its commits' notes and metrics (no data read); None if unknown."
    history = spark.sql(f"DESCRIBE HISTORY {name}").select("version", "userMetadata", "operationMetrics").collect()
    totals = {}
    for row in history:
        note = json.loads(row["userMetadata"]) if row["userMetadata"] else {}
        added = int((row["operationMetrics"] or {}).get("numOutputRows", 0))
        if "batch" in note:
            totals[note["batch"]] = totals.get(note["batch"], 0) + added
        elif added:
            return None  # rows written without a batch note (an older release, a manual change): count the data
    if not history or min(row["version"] for row in history) != 0:
        return None  # the oldest commits were cleaned from the log
    return totals

def latest_note(spark: SparkSession,
                name: str,  # the full table name
                **match,  # what the note must say, e.g. `stage="silver", batch="2013-05"`
               ) -> dict | None:
    "The note of the newest commit of table `name` whose note says `match`; None if none does (or no table)."
    commit = latest_commit(spark, name, **match)
    return commit["note"] if commit else None


# %% [markdown]
# ## Computing once for two writes
#
# A stage that writes one computation to two tables (silver's good rows and its
# quarantined rows) would compute it twice. `computed_once` keeps it in memory (spilling
# to disk) for the block. Databricks serverless compute refuses caching; there the
# block simply computes twice, which is correct, only slower.

# %%
#| export
@contextmanager
def computed_once(frame: DataFrame):
    "Within the block, `frame` is computed once and kept, where the engine allows caching."
    try:
        kept = frame.persist(StorageLevel.MEMORY_AND_DISK)
    except Exception as error:  # serverless: [NOT_SUPPORTED_WITH_SERVERLESS] PERSIST TABLE ...
        if "NOT_SUPPORTED" not in str(error):
            raise
        yield frame
        return
    try:
        yield kept
    finally:
        kept.unpersist()


# %%
squares = spark.range(5).selectExpr("id * id AS square")
with computed_once(squares) as kept:
    test_eq(kept.storageLevel.useMemory, True)
    test_eq(kept.count(), 5)
test_eq(squares.storageLevel.useMemory, False)


# %% [markdown]
# ## Slices, typed
#
# A write that touches part of a table names the part as values of its columns, for
# example `{"month": "2013-05"}`, never as SQL text: `slice_sql` checks each column is
# the table's and writes each value as a literal of its kind, so a month cannot be
# spelled into a broken (or injected) condition.

# %%
#| export
def _literal(value: object) -> str:
    "`value` as a Spark SQL literal: a string, a whole or real number, or a boolean."
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _quoted(value)
    raise DbxmlError(f"{value!r} is a {type(value).__name__}: a slice's values are strings, numbers or booleans")

def slice_sql(spec: TableSpec,
              where: dict[str, object],  # column -> value, e.g. `{"month": "2013-05"}`: the rows where all hold
              alias: str | None = None,  # qualify the columns, e.g. `target` in a `MERGE`
             ) -> str:
    "The SQL condition selecting the rows of `spec`'s table where every column of `where` has its value."
    unknown = [column for column in where if column not in spec.column_names]
    if unknown or not where:
        raise DbxmlError(f"{spec.table}: a slice names its columns ({', '.join(spec.column_names)}), "
                         f"not {', '.join(unknown) or 'nothing'}")
    prefix = f"{alias}." if alias else ""
    return " AND ".join(f"{prefix}{column} = {_literal(value)}" for column, value in where.items())


# %%
test_eq(slice_sql(example_spec, {"carrier": "O'K", "name": "x"}), "carrier = 'O\\'K' AND name = 'x'")
test_eq(slice_sql(example_spec, {"carrier": "AA"}, alias="target"), "target.carrier = 'AA'")
test_fail(lambda: slice_sql(example_spec, {"month": "2013-05"}), contains="not month")
test_fail(lambda: slice_sql(example_spec, {"carrier": None}), contains="a slice's values are strings")


# %% [markdown]
# ## Idempotent merge
#
# `merge_rows` upserts on the spec's keys with one `MERGE`: a new key is inserted, a key
# whose row changed is updated, and an unchanged row is left alone, so merging the same
# rows again rewrites nothing. `within` tells Delta which slice of the table the keys
# can live in (silver passes the batch), so it reads that slice's files only instead of
# the whole table. The rows must hold one row per key (silver deduplicates first); Delta
# refuses a merge where two source rows match one target row. A caller that knows the
# slice holds no rows yet (a new table, a batch not written before) says `new=True`: the
# rows are appended in one commit, which is what the `MERGE` would do, for about a
# third of its cost.

# %%
#| export
def merge_rows(frame: DataFrame,  # the new rows, one per key
               table: Table,  # where, with its declaration (keys, columns, constraints): `spec.on(target)`
               note: dict | None = None,  # a commit note (see `commit_note`)
               within: dict[str, object] | None = None,  # the only slice the keys can match (see `slice_sql`)
               new: bool = False,  # the caller knows that slice (else the table) holds no rows yet: append
              ) -> dict:
    "Upsert `frame` into `table` on its keys; returns the rows inserted and updated."
    name, spec = table.name, table.spec
    if not spec.keys:
        raise DbxmlError(f"{spec.table}: merge_rows needs the table's keys")
    spark = frame.sparkSession
    ensure_table(spark, name, spec)
    if new:
        before = table_version(spark, name)
        with commit_note(spark, note):
            conform(frame, spec).write.format("delta").mode("append").saveAsTable(name)
        return {"inserted": rows_written(spark, name, since=before), "updated": 0}  # Delta records no empty append
    view = f"dbxml_merge_source_{spec.table}"
    conform(frame, spec).createOrReplaceTempView(view)
    on = " AND ".join([f"target.{key} = source.{key}" for key in spec.keys]
                      + ([slice_sql(spec, within, alias="target")] if within else []))
    changed = " OR ".join(f"NOT (target.{column} <=> source.{column})" for column in spec.column_names
                          if column not in spec.keys)
    with commit_note(spark, note):
        result = spark.sql(f"MERGE INTO {name} AS target USING {view} AS source ON {on} "
                           f"WHEN MATCHED AND ({changed}) THEN UPDATE SET * "
                           f"WHEN NOT MATCHED THEN INSERT *").first()
    spark.catalog.dropTempView(view)
    return {"inserted": result["num_inserted_rows"], "updated": result["num_updated_rows"]}


# %% [markdown]
# Merging the same rows twice writes them once; a changed row is updated in place:

# %%
spark.sql(f"DROP TABLE IF EXISTS {airlines}")
rows = spark.createDataFrame([("9E", "Endeavor Air Inc."), ("AA", "American Airlines Inc.")], "carrier string, name string")
test_eq(merge_rows(rows, airlines_table, new=True), {"inserted": 2, "updated": 0})  # a new table: appended
test_eq(merge_rows(rows, airlines_table), {"inserted": 0, "updated": 0})
test_eq(merge_rows(rows.limit(0), airlines_table, new=True), {"inserted": 0, "updated": 0})  # and no commit
renamed = spark.createDataFrame([("AA", "American Airlines")], "carrier string, name string")
test_eq(merge_rows(renamed, airlines_table, note={"stage": "example"}, within={"carrier": "AA"}),
        {"inserted": 0, "updated": 1})
test_eq(sorted(tuple(row) for row in spark.table(airlines).collect()),
        [("9E", "Endeavor Air Inc."), ("AA", "American Airlines")])
test_eq(last_commit_note(spark, airlines), {"stage": "example"})
test_eq(latest_note(spark, airlines, stage="example"), {"stage": "example"})
test_eq(latest_note(spark, airlines, stage="another"), None)
test_eq(latest_commit(spark, airlines, stage="example")["rows"], 1)  # the commit that updated one row
test_eq(rows_by_batch(spark, airlines), None)  # its first rows came without a batch note


# %% [markdown]
# ## Replacing a slice
#
# `replace_rows` swaps every row of a slice (a month, a batch) for new rows in
# one commit, with Delta's `replaceWhere`: readers see the old slice or the new one,
# never a mix, and writing the same slice again gives the same table. Delta also checks
# that every new row matches the condition, so a stage cannot spill into another month.
#
# Most slices are new (the month a run adds), and a slice that holds no rows needs no
# replacing: its rows are appended, with the same check made while they are written.
# On two cores that is about 0.5 s a write instead of 1.8 s (the `replaceWhere`
# overwrite scans the slice's files and, through `saveAsTable`, replaces the catalog
# entry); the overwrite itself goes through `writeTo(...).overwrite`, which skips the
# catalog (about 1.4 s). Delta records no commit for a write that changes nothing (no
# rows into an empty slice), so such a write leaves no note either.

# %%
#| export
def replace_rows(frame: DataFrame,  # the slice's new rows
                 table: Table,  # where, with its declaration: `spec.on(target)`
                 where: dict[str, object],  # the slice, e.g. `{"month": "2013-05"}` (see `slice_sql`)
                 note: dict | None = None,  # a commit note (see `commit_note`)
                ) -> int:
    "Replace the rows of `table` in slice `where` with `frame`; returns the rows written."
    name, spec = table.name, table.spec
    spark = frame.sparkSession
    ensure_table(spark, name, spec)
    condition, before = slice_sql(spec, where), table_version(spark, name)
    rows = conform(frame, spec)
    with commit_note(spark, note):
        if spark.table(name).where(condition).isEmpty():  # Delta's file statistics answer, mostly without reading
            outside = F.raise_error(F.lit(f"{name}: a row is outside the slice being written, {condition}"))
            (rows.where(F.when(F.expr(condition), F.lit(True)).otherwise(outside))
             .writeTo(name).option("mergeSchema", "true").append())
        else:
            rows.writeTo(name).option("mergeSchema", "true").overwrite(F.expr(condition))
    return rows_written(spark, name, since=before)  # no rows for a slice that had none: no commit


# %%
monthly = TableSpec("example_monthly", "Numbers by month.",
                    (Column("month", "STRING", "YYYY-MM"), Column("value", "BIGINT", "A number.")))
monthly_table = monthly.on(scratch)
numbers = monthly_table.name
spark.sql(f"DROP TABLE IF EXISTS {numbers}")
for month, count in [("2013-01", 3), ("2013-02", 2), ("2013-01", 4), ("2013-01", 4)]:
    written = replace_rows(spark.range(count).selectExpr(f"'{month}' AS month", "id AS value"), monthly_table,
                           {"month": month})
    test_eq(written, count)
rows = spark.table(numbers).groupBy("month").count().orderBy("month").collect()
test_eq([(row["month"], row["count"]) for row in rows], [("2013-01", 4), ("2013-02", 2)])
test_fail(lambda: replace_rows(spark.range(1).selectExpr("'2013-03' AS month", "id AS value"), monthly_table,
                               {"month": "2013-01"}))  # a row outside the slice is refused
test_fail(lambda: replace_rows(spark.range(1).selectExpr("'2013-03' AS month", "id AS value"), monthly_table,
                               {"month": "2013-04"}), contains="outside the slice")  # also when the slice is new
test_eq(spark.table(numbers).count(), 6)
version = table_version(spark, numbers)
test_eq(replace_rows(spark.range(0).selectExpr("'2013-04' AS month", "id AS value"), monthly_table,
                     {"month": "2013-04"}), 0)
test_eq(table_version(spark, numbers), version)  # nothing into an empty slice: no commit

# %% [markdown]
# A column a later release adds to the declaration joins the table at its next write
# (Delta's `mergeSchema`); the rows written before hold null there:

# %%
wider = TableSpec("example_monthly", "Numbers by month.", (*monthly.columns, Column("note", "STRING", "A remark.")))
replace_rows(spark.range(1).selectExpr("'2013-03' AS month", "id AS value", "'new' AS note"), wider.on(scratch),
             {"month": "2013-03"})
test_eq(sorted((row["month"], row["note"]) for row in spark.table(numbers).where("month >= '2013-02'").collect()),
        [("2013-02", None), ("2013-02", None), ("2013-03", "new")])


# %% [markdown]
# ## Comparing contents
#
# "A rerun leaves the table identical" needs a comparison of contents, not counts.
# `content_digest` hashes every row and sums the hashes, so it does not depend on row
# order or file layout, but changes when any value of any row changes, a row is added,
# or one is duplicated. `exclude` leaves out columns that legitimately differ, such as
# the landing path when two lakehouses in different folders are compared.

# %%
#| export
def content_digest(spark: SparkSession,
                   name: str,  # the full table name
                   exclude: tuple[str, ...] = (),  # columns to leave out
                  ) -> str:
    "A digest of the rows of table `name` that ignores their order: `<rows>:<sum of row hashes>`."
    table = spark.table(name)
    row = F.to_json(F.struct(*[column for column in table.columns if column not in exclude]))
    row_hash = F.conv(F.substring(F.sha2(row, 256), 1, 15), 16, 10).cast("decimal(38,0)")
    result = table.agg(F.count("*").alias("rows"), F.coalesce(F.sum(row_hash), F.lit(0)).alias("sum")).first()
    return f"{result['rows']}:{result['sum']}"


# %%
before = content_digest(spark, numbers)
replace_rows(spark.range(4).selectExpr("'2013-01' AS month", "id AS value"), monthly_table, {"month": "2013-01"})
test_eq(content_digest(spark, numbers), before)  # the same rows again: the same digest
replace_rows(spark.range(4).selectExpr("'2013-01' AS month", "id + 1 AS value"), monthly_table, {"month": "2013-01"})
assert content_digest(spark, numbers) != before
test_eq(content_digest(spark, numbers, exclude=("value",)), content_digest(spark, numbers, exclude=("value",)))
