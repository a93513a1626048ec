# %% [markdown]
# # Score
# > Batch-score a month of flights with the champion, through Spark, into a predictions
# > table that says which model, which data and when.
#
# Scoring loads the model the way any consumer would, by its alias
# (`models:/<name>@champion`), and applies it with `mlflow.pyfunc.spark_udf`, so the
# work is spread over Spark's Python workers (on Databricks, over the cluster) and the
# same code runs on local Spark, Spark Connect and serverless. The alias is resolved to
# a version once, before scoring, so a promotion in the middle of a run cannot mix two
# models in one month.
#
# A month is replaced whole (`replace_rows`), so scoring it again leaves one row per
# flight, now from whichever version is champion. Every row records the model name and
# version, the scoring time, and the feature table and version it was computed from.

# %%
#| default_exp score

# %%
#| export
from __future__ import annotations

import mlflow
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dbxml.config import DbxmlError, Target
from dbxml.registry import CHAMPION, alias_version, model_name
from dbxml.tables import Column, TableSpec, replace_rows, table_version
from dbxml.tracking import use_mlflow
from dbxml.train import input_columns
from dbxml.usecase import UseCase, use_case_of

# %%
#| hide
from fastcore.test import test_eq, test_fail

from dbxml.catalog import table_name
from dbxml.config import scratch_target, with_overrides
from dbxml.flights import FLIGHTS
from dbxml.lakehouse import cached_lakehouse
from dbxml.sources import parse_months
from dbxml.registry import promote, register, validate
from dbxml.spark import get_spark
from dbxml.tables import content_digest, last_commit_note
from dbxml.train import train_model

# %% [markdown]
# ## The predictions table
#
# One row per feature row, named after the model: the demo's `flight_delay_predictions`
# holds `delay_probability`, and `predicted_delayed` applies a fixed decision threshold
# to it; consumers that need another trade-off use the probability directly. The use case
# names both columns ([the use case](17_usecase.ipynb)) and the feature columns the
# predictions keep (the demo keeps `scheduled_departure`).

# %%
#| export
DECISION_THRESHOLD = 0.5  # a row is predicted positive when its probability reaches this

def predictions_spec(use_case: UseCase) -> TableSpec:
    "The predictions table of `use_case`'s model: `<model>_predictions`, one row per feature row."
    features = {column.name: column for column in use_case.features.columns}
    key = features[use_case.key]
    return TableSpec(
        f"{use_case.model}_predictions", f"The {use_case.model} model's prediction for every row of "
        f"{use_case.features.table}, by month.",
        (Column(key.name, key.type, f"{key.comment} (see {use_case.features.table})", nullable=False),
         Column("month", "STRING", "The month of the row, YYYY-MM.", nullable=False),
         *[features[name] for name in use_case.carried],
         Column(use_case.prediction, "DOUBLE", f"The model's probability that {use_case.label} is 1."),
         Column(use_case.decision, "INT", f"1 if {use_case.prediction} >= {DECISION_THRESHOLD}, else 0."),
         Column("model_name", "STRING", "The registered model, catalog.schema.model.", nullable=False),
         Column("model_version", "STRING", "The model version that scored the row.", nullable=False),
         Column("scored_at", "TIMESTAMP", "When the month was scored."),
         Column("source_table", "STRING", "The feature table read."),
         Column("source_version", "BIGINT", "The feature table's Delta version read.")),
        keys=(use_case.key,), constraints={"probability_in_range": f"{use_case.prediction} BETWEEN 0 AND 1"})


# %%
test_eq(predictions_spec(FLIGHTS).table, "flight_delay_predictions")
test_eq(predictions_spec(FLIGHTS).column_names[:5],
        ["flight_id", "month", "scheduled_departure", "delay_probability", "predicted_delayed"])


# %% [markdown]
# ## Scoring through Spark
#
# `spark_udf` with `result_type="array<double>"` returns both class probabilities;
# element 1 is the probability of the label being 1, a delay in the demo. (Asking for a
# plain `double` would silently return the first column, the probability of *no* delay.)

# %%
#| export
def probability_column(spark: SparkSession,
                       model_uri: str,  # e.g. `models:/local.flights.flight_delay/3`
                       use_case: UseCase,  # the model's input columns
                      ) -> SparkColumn:
    "A Spark column: the probability of the label (a delay) the model at `model_uri` gives each row."
    predict = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="array<double>", env_manager="local")
    return predict(F.struct(*input_columns(use_case)))[1]

def score_rows(spark: SparkSession, target: Target,
               month: str,  # `YYYY-MM`
               alias: str = CHAMPION,  # the model alias to score with
              ) -> tuple[DataFrame, dict]:
    "The prediction rows for `month` (not yet written), and where they came from."
    name = model_name(target)
    version = alias_version(target, alias)
    if version is None:
        raise DbxmlError(f"{name} has no {alias}: train, validate and promote a model first "
                         "(dbxml run, or the train and registry notebooks).")
    use_mlflow(target)
    use_case = use_case_of(target)
    source = use_case.features.on(target).name
    source_version = table_version(spark, source)
    if source_version is None:
        raise DbxmlError(f"{source} does not exist: build gold first (dbxml run -p month=YYYY-MM).")
    features = spark.sql(f"SELECT * FROM {source} VERSION AS OF {source_version}").where(F.col("month") == month)
    kept = [use_case.key, "month", *use_case.carried]
    probability = probability_column(spark, f"models:/{name}/{version}", use_case)
    rows = (features.select(*kept, *input_columns(use_case))
            .withColumn(use_case.prediction, probability)
            .select(*kept, use_case.prediction,
                    (F.col(use_case.prediction) >= DECISION_THRESHOLD).cast("int").alias(use_case.decision),
                    F.lit(name).alias("model_name"), F.lit(version).alias("model_version"),
                    F.current_timestamp().alias("scored_at"), F.lit(source).alias("source_table"),
                    F.lit(source_version).alias("source_version")))
    return rows, {"model_version": version, "source_version": source_version, "source": source}

def score_month(spark: SparkSession, target: Target,
                month: str,  # `YYYY-MM`
                alias: str = CHAMPION,
               ) -> dict:
    "Score every feature row (the demo: flight) of `month` with the model holding `alias`, replacing the month's."
    rows, origin = score_rows(spark, target, month, alias)
    expected = (spark.sql(f"SELECT * FROM {origin['source']} VERSION AS OF {origin['source_version']}")
                .where(F.col("month") == month).count())
    if expected == 0:  # checked before writing: an empty month would otherwise erase its predictions
        raise DbxmlError(f"{origin['source']} has no rows in {month}: build the month first (dbxml run -p month=YYYY-MM).")
    note = {"stage": "score", "month": month, "model_version": origin["model_version"],
            "features_version": origin["source_version"]}
    written = replace_rows(rows, predictions_spec(use_case_of(target)).on(target), {"month": month}, note)
    if written != expected:
        raise DbxmlError(f"scoring {month} wrote {written} predictions for {expected} rows.")
    return {"month": month, "predictions": written, **origin}


# %% [markdown]
# ## Example: the champion scores March
#
# January to March from the real data; a model trained on January and validated on
# February becomes champion, then scores March:

# %%
scratch = with_overrides(scratch_target(), schema="score")  # own tables and model: notebooks may share a home
spark = get_spark(scratch)
cached_lakehouse(spark, scratch, parse_months("2013-01..2013-03"))  # built once, copied after (15_lakehouse)
test_fail(lambda: score_month(spark, scratch, "2013-03"), contains="has no champion")
version = register(scratch, train_model(spark, scratch, "2013-02", window=1))
assert promote(scratch, validate(spark, scratch, version, "2013-02"), why="first model")
march = score_month(spark, scratch, "2013-03")
print(march)
test_eq((march["predictions"], march["model_version"]), (28_834, version))

# %% [markdown]
# Every flight has a probability, the late ones more than the punctual ones, and every
# row says where it came from:

# %%
predictions = spark.table(table_name(scratch, "flight_delay_predictions").on(scratch))
features = spark.table(table_name(scratch, "gold_flight_features").on(scratch))
joined = predictions.join(features.select("flight_id", "delayed"), "flight_id")
by_outcome = {row["delayed"]: row["mean"] for row in
              joined.groupBy("delayed").agg(F.avg("delay_probability").alias("mean")).collect()}
print(by_outcome)
assert by_outcome[1] > by_outcome[0] + 0.05
test_eq(predictions.select("model_name", "model_version", "source_version").distinct().count(), 1)
test_eq(last_commit_note(spark, table_name(scratch, "flight_delay_predictions").on(scratch))["model_version"], version)

# %% [markdown]
# Scoring the month again replaces it: the same predictions, not twice as many.

# %%
predictions_name = table_name(scratch, "flight_delay_predictions").on(scratch)
before = content_digest(spark, predictions_name, exclude=("scored_at",))
test_eq(score_month(spark, scratch, "2013-03")["predictions"], 28_834)
test_eq(content_digest(spark, predictions_name, exclude=("scored_at",)), before)

# %% [markdown]
# A month that is not built is refused before anything is written:

# %%
test_fail(lambda: score_month(spark, scratch, "2013-09"), contains="has no rows in 2013-09")
test_eq(content_digest(spark, predictions_name, exclude=("scored_at",)), before)

# %% [markdown]
# ## As a job task
#
# This stage runs as the `score` task of the bundle's `monthly` job, through the
# pipeline notebook [`pipelines/score.ipynb`](pipelines/score.ipynb), which declares its
# parameters; `dbxml run` runs that job locally (see [the runner](32_runner.ipynb)).
