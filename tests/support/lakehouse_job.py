"""Run the lakehouse for some months on a local lakehouse in a given folder, then print one JSON line:
the counts per run and a content digest per table. Used by test_lakehouse (as a separate process, so
it can be killed, and so each lakehouse has its own JVM and metastore).

    python lakehouse_job.py HOME MONTHS [RUNS]
"""
import json
import sys
from pathlib import Path

from dbxml.catalog import table_name
from dbxml.config import load_target, with_overrides
from dbxml.lakehouse import run_lakehouse
from dbxml.sources import parse_months
from dbxml.spark import get_spark
from dbxml.tables import content_digest

TABLES = ["bronze_flights", "bronze_airlines", "bronze_airports", "bronze_planes", "bronze_weather",
          "silver_flights", "silver_airlines", "silver_airports", "silver_planes", "silver_weather",
          "quarantine", "gold_ontime", "gold_flight_features"]
# columns that hold where or when a file landed: they differ between two lakehouses, never between reruns
PLACE_AND_TIME = ("_source_file", "source_file", "_ingested_at", "ingested_at")


def digests(spark, target):
    "Per table: the digest of all columns, and of the columns that do not depend on where and when it ran."
    names = {table: table_name(target, table).on(target) for table in TABLES}
    return {table: {"all": content_digest(spark, name), "portable": content_digest(spark, name, PLACE_AND_TIME)}
            for table, name in names.items()}


def main(home, months, runs=1):
    target = with_overrides(load_target("local", environ={}), home=Path(home))
    spark = get_spark(target)
    results = []
    for _ in range(int(runs)):
        rows = run_lakehouse(spark, target, parse_months(months), progress=None)
        counts = [{key: value for key, value in row.items() if not key.endswith("_s")} for row in rows]
        results.append({"counts": counts, "digests": digests(spark, target)})
    print(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
