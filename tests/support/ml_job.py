"""Run the monthly job in-process over January to March on a local lakehouse in HOME (the first model is trained
in February and scores March), then March again; challenge the champion with a model trained on shuffled labels,
rebuild March's gold, and print one JSON line with what the tests check. Runs as its own process (its own JVM and
metastore).

    python ml_job.py HOME
"""
import json
import sys
from pathlib import Path

from pyspark.sql import functions as F

from dbxml.catalog import table_name
from dbxml.config import load_target, with_overrides
from dbxml.gold import build_month
from dbxml.registry import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    model_name,
    promote,
    register,
    registry,
    training_sources,
    validate,
)
from dbxml.runner import run_job
from dbxml.spark import get_spark
from dbxml.tables import content_digest, table_version
from dbxml.train import train_model

# columns that say when a row was written: they differ between reruns by design
WHEN = ("scored_at", "monitored_at")


def digests(spark, target):
    "Digests of the tables the lifecycle writes, without the time they were written."
    return {table: content_digest(spark, table_name(target, table).on(target), WHEN)
            for table in ("flight_delay_predictions", "monitor_flight_delay", "monitor_baselines")}


def task_values(outcome):
    "month -> task -> the values it set, for a run of the job that must not have failed."
    assert not outcome.failed, [(result.task, result.error) for result in outcome.failed]
    found = {}
    for result in outcome.results:
        found.setdefault(result.run, {})[result.task] = result.values
    return found


def walk_back(spark, target, version):
    "From a model version to the exact rows it learnt from: its pinned Delta version, and that commit's note."
    source = training_sources(target, version)["training"]
    model = registry(target).get_model_version(model_name(target), version)
    pinned = spark.sql(f"SELECT * FROM {source['table']} VERSION AS OF {source['version']}")
    note = (spark.sql(f"DESCRIBE HISTORY {source['table']}").where(F.col("version") == source["version"])
            .first()["userMetadata"])
    return {"source": source, "tags": model.tags,
            "training_rows": int(registry(target).get_run(model.run_id).data.params["training_rows"]),
            "pinned_rows": pinned.where("month = '2013-01' AND delayed IS NOT NULL").count(),
            "pinned_months": sorted(row[0] for row in pinned.select("month").distinct().collect()),
            "latest_months": sorted(row[0] for row in spark.table(source["table"]).select("month").distinct().collect()),
            "note": json.loads(note)}


def main(home):
    target = with_overrides(load_target("local", environ={}), home=Path(home))
    quarter = task_values(run_job(target, overrides={"month": "2013-01..2013-03", "window": "1"}, in_process=True))
    spark = get_spark(target)
    features = table_name(target, "gold_flight_features").on(target)
    first_run = digests(spark, target)
    rerun = task_values(run_job(target, overrides={"month": "2013-03", "window": "1"}, in_process=True))["2013-03"]
    shuffled = register(target, train_model(spark, target, "2013-03", window=2, shuffle_labels=True))
    decision = validate(spark, target, shuffled, "2013-03")
    promoted = promote(target, decision, why="test: shuffled labels")
    version_before_rebuild = table_version(spark, features)
    # gold moves on: March's features are lost and rebuilt (they no longer reconcile with silver, so the rebuild
    # writes); the models' pinned versions must not move
    spark.sql(f"DELETE FROM {features} WHERE month = '2013-03'")
    build_month(spark, target, "2013-03")
    print(json.dumps({
        "walk_back": walk_back(spark, target, "1"),
        "quarter": quarter,
        "rerun": rerun,
        "digests": [first_run, digests(spark, target)],
        "shuffled": {"version": shuffled, "promoted": promoted, "reasons": decision.reasons,
                     "champion": alias_version(target, CHAMPION), "challenger": alias_version(target, CHALLENGER)},
        "features_version": {"before_rebuild": version_before_rebuild, "after": table_version(spark, features)},
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
