# %% [markdown]
# # Table names
# > One name for a table on every target: `catalog.schema.table`.
#
# On Databricks the three parts are Unity Catalog names, and grants, lineage and audit
# logs all speak them. Locally Delta's catalog can only be `spark_catalog`, so the
# catalog and schema fold into one database name, `catalog__schema`: deterministic,
# reversible, and unique because `dbxml.config` forbids double underscores in names.
# Local names keep three parts too (`spark_catalog.catalog__schema.table`), so tools
# that read the first part as a catalog, such as MLflow's dataset lineage, see the
# local metastore for what it is rather than mistaking it for Unity Catalog.
# Everything that reads or writes a table asks this module for its name; nothing
# builds one by hand.

# %%
#| default_exp catalog

# %%
#| export
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from dbxml.config import DbxmlError, Target, check_identifier

# %%
#| hide
from fastcore.test import test_eq, test_fail

from dbxml.config import load_target, scratch_target
from dbxml.spark import get_spark

# %%
#| export
LOCAL_CATALOG = "spark_catalog"  # the only catalog Delta Lake supports in open-source Spark

@dataclass(frozen=True)
class TableName:
    "A table's name on every target."
    catalog: str  # e.g. `dbxml_dev`
    schema: str  # e.g. `flights`
    table: str  # e.g. `silver_flights`

    def __post_init__(self):
        for part in ("catalog", "schema", "table"):
            check_identifier(getattr(self, part), part)

    def unity(self) -> str:
        "The Unity Catalog name: `catalog.schema.table`."
        return f"{self.catalog}.{self.schema}.{self.table}"

    def local(self) -> str:
        "The name local Spark uses: catalog and schema folded into one database of `spark_catalog`."
        return f"{LOCAL_CATALOG}.{local_database(self.catalog, self.schema)}.{self.table}"

    def on(self, target: Target) -> str:
        "The name to hand Spark on `target`."
        return self.local() if target.is_local else self.unity()


# %%
#| export
def local_database(catalog: str, schema: str) -> str:
    "The local database that stands for Unity Catalog's `catalog.schema`."
    return f"{catalog}__{schema}"


# %% [markdown]
# Folding keeps names unique as long as no name contains a double underscore, which
# the constructor refuses:

# %%
name = TableName("dev", "flights", "silver_flights")
test_eq(name.unity(), "dev.flights.silver_flights")
test_eq(name.local(), "spark_catalog.dev__flights.silver_flights")
test_fail(lambda: TableName("dev", "my__flights", "t"), contains="not a valid name")
test_fail(lambda: TableName("dev", "flights", "t; DROP TABLE x"), contains="not a valid name")


# %% [markdown]
# Code names tables the Unity Catalog way, as one string; `parse_table_name` checks it:

# %%
#| export
def parse_table_name(text: str,  # a three-part name, `catalog.schema.table`
                    ) -> TableName:
    "The `TableName` written as `catalog.schema.table`; anything else is a `DbxmlError`."
    parts = text.split(".")
    if len(parts) != 3:
        raise DbxmlError(f"table name {text!r} must have three parts, catalog.schema.table.")
    return TableName(*parts)


# %%
test_eq(parse_table_name("main.sales.gold_features"), TableName("main", "sales", "gold_features"))
test_fail(lambda: parse_table_name("flights.gold"), contains="must have three parts")


# %% [markdown]
# Most code only knows the short table name; the target supplies catalog and schema.
# The same call gives the Unity Catalog name on Databricks and the folded one locally:

# %%
#| export
def table_name(target: Target,  # where the table lives
               table: str,  # the table's own name, e.g. `bronze_flights`
              ) -> TableName:
    "The `TableName` of `table` in the target's catalog and schema."
    return TableName(target.catalog, target.schema, table)


# %%
prod, local = load_target("prod", environ={}), load_target("local", environ={})
test_eq(table_name(prod, "bronze_flights").on(prod), "dbxml_prod.flights.bronze_flights")
test_eq(table_name(local, "bronze_flights").on(local), "spark_catalog.local__flights.bronze_flights")


# %% [markdown]
# ## Creating the schema
#
# On Databricks, catalogs and schemas come from Terraform (`infra/`), with their grants;
# a pipeline only checks that its schema is there. Locally nobody else will create the
# database, so the pipeline does.

# %%
#| export
def ensure_schema(spark: SparkSession,  # the target's session (`get_spark`)
                  target: Target,  # whose catalog and schema to ensure
                 ) -> str:
    "Create the target's schema if it is local and missing; return the name Spark knows it by."
    if target.is_local:
        database = local_database(target.catalog, target.schema)
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
        return database
    schema = f"{target.catalog}.{target.schema}"
    if not spark.catalog.databaseExists(schema):
        raise DbxmlError(f"schema {schema} does not exist: apply infra/ (Terraform creates the catalogs "
                         f"and schemas of target {target.name!r}, with their grants) before running there.")
    return schema


# %% [markdown]
# A table written under its folded local name is found again by the same `TableName`:

# %%
scratch = scratch_target()
spark = get_spark(scratch)
test_eq(ensure_schema(spark, scratch), "local__flights")
numbers = table_name(scratch, "numbers")
spark.range(3).write.format("delta").mode("overwrite").saveAsTable(numbers.on(scratch))
test_eq(spark.table(numbers.on(scratch)).count(), 3)
assert spark.catalog.tableExists(numbers.local())
