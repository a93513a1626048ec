"""Build January and February on a local lakehouse in HOME and run the model lifecycle over them, then
the same for March; challenge the champion with a model trained on shuffled labels, rebuild March's gold,
and print one JSON line with what the tests check. Runs as its own process (its own JVM and metastore).

    python ml_job.py HOME
"""
import json
import sys
from pathlib import Path

from dbxml.catalog import table_name
from dbxml.config import load_target, with_overrides
from dbxml.gold import build_month
from dbxml.lakehouse import parse_months, run_lakehouse
from dbxml.lifecycle import lifecycle_month, run_lifecycle
from dbxml.registry import CHALLENGER, CHAMPION, alias_version, promote, register, validate
from dbxml.spark import get_spark
from dbxml.tables import content_digest, table_version
from dbxml.train import train_model

# columns that say when a row was written: they differ between reruns by design
WHEN = ("scored_at", "monitored_at")


def digests(spark, target):
    "Digests of the tables the lifecycle writes, without the time they were written."
    return {table: content_digest(spark, table_name(target, table).on(target), WHEN)
            for table in ("flight_delay_predictions", "monitor_flight_delay", "monitor_baselines")}


def main(home):
    target = with_overrides(load_target("local", environ={}), home=Path(home))
    spark = get_spark(target)
    # months arrive one by one: the first model is trained before March exists in gold
    run_lakehouse(spark, target, parse_months("2013-01..2013-02"), progress=None)
    lifecycle = run_lifecycle(spark, target, parse_months("2013-01..2013-02"), window=1, progress=None)
    run_lakehouse(spark, target, ["2013-03"], progress=None)
    lifecycle.append(lifecycle_month(spark, target, "2013-03", window=1))
    features = table_name(target, "gold_flight_features").on(target)
    first_run = digests(spark, target)
    rerun = lifecycle_month(spark, target, "2013-03", window=1)
    shuffled = register(target, train_model(spark, target, "2013-03", window=2, shuffle_labels=True))
    decision = validate(spark, target, shuffled, "2013-03")
    promoted = promote(target, decision, why="test: shuffled labels")
    version_before_rebuild = table_version(spark, features)
    # gold moves on: March's features are lost and rebuilt (they no longer reconcile with silver, so the rebuild
    # writes); the models' pinned versions must not move
    spark.sql(f"DELETE FROM {features} WHERE month = '2013-03'")
    build_month(spark, target, "2013-03")
    print(json.dumps({
        "lifecycle": [{key: value for key, value in row.items() if key != "seconds"} for row in lifecycle],
        "rerun": {key: value for key, value in rerun.items() if key != "seconds"},
        "digests": [first_run, digests(spark, target)],
        "shuffled": {"version": shuffled, "promoted": promoted, "reasons": decision.reasons,
                     "champion": alias_version(target, CHAMPION), "challenger": alias_version(target, CHALLENGER)},
        "features_version": {"before_rebuild": version_before_rebuild, "after": table_version(spark, features)},
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
