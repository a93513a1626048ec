# %% [markdown]
# # Smoke job
# > The main job until the pipeline exists: prove that Spark, Delta Lake and MLflow work
# > together on a target.
#
# `make run` runs this job on the `local` target. It exercises every component the real
# pipeline will use: it asks `get_spark` for a Delta-enabled session, writes a Delta
# table under its Unity Catalog-style name, reads it back, and logs an MLflow run that
# records the table and the exact Delta version it read as a dataset input (the lineage
# the training stage will need). Rerunning it overwrites the table and adds one run.

# %%
#| default_exp smoke

# %%
#| export
from __future__ import annotations

import warnings

from dbxml.catalog import ensure_schema, table_name
from dbxml.config import DbxmlError, Target
from dbxml.spark import get_spark
from dbxml.tracking import ensure_experiment

# %%
#| hide
import mlflow
from fastcore.test import test_eq

from dbxml.config import scratch_target

# %%
#| export
SMOKE_TABLE = "smoke_numbers"
SMOKE_EXPERIMENT = "/Shared/dbxml/smoke"

def run_smoke(target: Target,  # where to run
              rows: int = 1000,  # how many rows to write
             ) -> dict:
    "Write and read back a Delta table on `target` and log an MLflow run about it; returns what happened."
    import mlflow

    spark = get_spark(target)
    ensure_schema(spark, target)
    name = table_name(target, SMOKE_TABLE).on(target)
    numbers = spark.range(rows).selectExpr("id", "id % 7 AS weekday")
    numbers.write.format("delta").mode("overwrite").option("overwriteSchema", "true").saveAsTable(name)
    version = spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()["version"]
    read_back = spark.read.option("versionAsOf", version).table(name).count()
    if read_back != rows:
        raise DbxmlError(f"smoke job wrote {rows} rows to {name} but read back {read_back}.")
    with mlflow.start_run(experiment_id=ensure_experiment(target, SMOKE_EXPERIMENT),
                          run_name=f"smoke-{target.name}") as run:
        mlflow.log_params({"target": target.name, "table": name})
        mlflow.log_metrics({"rows_written": rows, "rows_read": read_back, "delta_version": version})
        with warnings.catch_warnings():  # MLflow's hint about integer columns concerns models, not inputs
            warnings.simplefilter("ignore", UserWarning)
            mlflow.log_input(mlflow.data.load_delta(table_name=name, version=version), context="smoke")
        result = {"table": name, "rows": read_back, "delta_version": version, "run_id": run.info.run_id,
                  "tracking_uri": target.mlflow_tracking_uri}
        mlflow.log_dict(result, "smoke.json")  # an artifact, so the artifact store is exercised too
    return result


# %% [markdown]
# On a scratch home the job writes, reads, and logs a run whose dataset input names the
# table and its version. Running it again is safe: the table is overwritten (a new
# Delta version) and still holds the same rows.

# %%
scratch = scratch_target()
first = run_smoke(scratch, rows=50)
test_eq(first["rows"], 50)
run = mlflow.get_run(first["run_id"])
test_eq(run.data.metrics["rows_read"], 50)
dataset = run.inputs.dataset_inputs[0].dataset
test_eq(dataset.source_type, "delta_table")
test_eq(dataset.name, f"{first['table']}@v{first['delta_version']}")
test_eq(mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/smoke.json")["rows"], 50)
again = run_smoke(scratch, rows=50)
test_eq((again["rows"], again["delta_version"]), (50, first["delta_version"] + 1))
