"""Benchmark: the lakehouse stages against the same silver and gold logic as one plain PySpark job.

    python tests/benchmarks/bench_lakehouse.py [--months 2013-01..2013-12]

On a fresh local lakehouse (a temporary folder) it lands the files and ingests every month into
bronze (timed), then, in the same Spark session, runs for each month:

- dbxml: `refine_month` (silver: typing, joins, rules, quarantine, MERGE, reconciliation) and
  `build_month` (gold marts and features, with their checks);
- plain: the same typing, joins, derived columns, rule filter, deduplication and gold aggregates
  written as straightforward PySpark, with overwrite-by-month writes and no quarantine, no
  constraints, no reconciliation: what a hand-written job would do.

Plain and dbxml alternate month by month, so both see the same JVM warmth. It prints seconds per
stage and month, totals, rows per second, and the ratio dbxml / plain (the goal is at most 1.1).
Not a test: timings vary with the machine.
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

from pyspark.sql import Window
from pyspark.sql import functions as F

from dbxml.bronze import ingest_dimensions, ingest_month
from dbxml.catalog import ensure_schema, table_name
from dbxml.config import load_target, with_overrides
from dbxml.gold import build_month
from dbxml.silver import refine_dimensions, refine_month
from dbxml.sources import land_source_files, parse_months
from dbxml.spark import get_spark

NUMBERS = {"year": "int", "month": "int", "day": "int", "dep_time": "int", "sched_dep_time": "int",
           "dep_delay": "double", "arr_time": "int", "sched_arr_time": "int", "arr_delay": "double", "flight": "int",
           "air_time": "double", "distance": "double", "hour": "int", "minute": "int", "time_hour": "timestamp"}


def plain_month(spark, target, month):
    "Silver and gold for one month, written the plain way. Returns the silver row count."
    def table(name):
        return spark.table(table_name(target, name).on(target))

    def clean(column):
        return F.when(F.trim(column).isin("", "NA"), None).otherwise(F.trim(column))

    raw = table("bronze_flights").where(F.col("_batch") == month).where(F.col("_corrupt_record").isNull())
    typed = raw.select(*[clean(c).try_cast(NUMBERS[c]).alias(c) if c in NUMBERS else clean(c).alias(c)
                         for c in raw.columns if not c.startswith("_")], "_batch")
    airports = table("silver_airports")
    origin = airports.select(F.col("faa").alias("origin"), F.col("name").alias("origin_name"),
                             F.col("tzone").alias("origin_tzone"))
    dest = airports.select(F.col("faa").alias("dest"), F.col("name").alias("dest_name"), F.col("tzone").alias("dest_tzone"))
    planes = table("silver_planes").select("tailnum", F.col("year").alias("plane_year"),
                                           F.col("seats").alias("plane_seats"))
    weather = table("silver_weather").select("origin", "time_hour", "temp", "humid", "wind_speed", "wind_gust",
                                             "precip", "pressure", "visib")
    airlines = table("silver_airlines").select("carrier", F.col("name").alias("carrier_name"))
    joined = (typed.join(airlines, "carrier", "left").join(origin, "origin", "left").join(dest, "dest", "left")
              .join(planes, "tailnum", "left").join(weather, ["origin", "time_hour"], "left"))
    date = F.date_format(F.make_date("year", "month", "day"), "yyyy-MM-dd")

    def instant(day, hhmm, zone):
        return F.try_to_timestamp(F.format_string("%s %02d:%02d %s", day, (F.col(hhmm) / 100).cast("int"),
                                                  F.col(hhmm) % 100, zone), F.lit("yyyy-MM-dd HH:mm VV"))
    departure = instant(date, "sched_dep_time", F.col("origin_tzone"))
    arrival = instant(date, "sched_arr_time", F.col("dest_tzone"))
    next_day = instant(F.date_format(F.date_add(F.make_date("year", "month", "day"), 1), "yyyy-MM-dd"),
                       "sched_arr_time", F.col("dest_tzone"))
    silver = (joined
              .where("carrier IS NOT NULL AND flight IS NOT NULL AND origin IS NOT NULL AND origin_tzone IS NOT NULL")
              .where("distance > 0 AND (air_time IS NULL OR air_time > 0)")
              .withColumn("flight_id", F.format_string("%s/%s%d/%s", date, "carrier", "flight", "origin"))
              .withColumn("scheduled_departure", departure)
              .withColumn("scheduled_arrival", F.when(arrival < departure, next_day).otherwise(arrival))
              .withColumn("actual_departure", F.timestamp_add("MINUTE", F.col("dep_delay").cast("bigint"),
                                                              F.col("scheduled_departure")))
              .withColumn("cancelled", F.col("dep_time").isNull())
              .withColumn("rank", F.row_number().over(Window.partitionBy("flight_id").orderBy("sched_dep_time")))
              .where("rank = 1").drop("rank"))
    silver.write.format("delta").mode("overwrite").option("replaceWhere", f"_batch = '{month}'") \
        .saveAsTable(table_name(target, "plain_silver_flights").on(target))
    flights = table("plain_silver_flights").where(F.col("_batch") == month)
    delayed = F.col("dep_delay") >= 15
    marts = (flights.groupBy("_batch", "carrier", "carrier_name", "origin")
             .agg(F.count("*").alias("flights"), F.count_if("cancelled").alias("cancelled"),
                  F.count_if(delayed).alias("delayed"), (F.count_if(delayed) / F.count("dep_delay")).alias("delayed_share"),
                  F.avg("dep_delay").alias("mean_dep_delay"), F.percentile("dep_delay", 0.9).alias("p90_dep_delay"),
                  F.avg("arr_delay").alias("mean_arr_delay")))
    marts.write.format("delta").mode("overwrite").option("replaceWhere", f"_batch = '{month}'") \
        .saveAsTable(table_name(target, "plain_gold_ontime").on(target))
    local = F.make_timestamp_ntz("year", "month", "day", "hour", "minute", F.lit(0))
    features = flights.select("flight_id", "_batch", "scheduled_departure", "carrier", "origin", "dest", "distance",
                              F.col("hour").alias("dep_hour"), F.dayofweek(local).alias("day_of_week"),
                              F.dayofyear(local).alias("day_of_year"), (F.col("year") - F.col("plane_year")).alias("plane_age"),
                              "plane_seats", "temp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib",
                              F.when(~F.col("cancelled"), delayed.cast("int")).alias("delayed"), "dep_delay", "cancelled")
    features.write.format("delta").mode("overwrite").option("replaceWhere", f"_batch = '{month}'") \
        .saveAsTable(table_name(target, "plain_gold_flight_features").on(target))
    return flights.count()


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", default="2013-01..2013-12")
    months = parse_months(parser.parse_args().months)
    home = Path(tempfile.mkdtemp(prefix="dbxml-bench-")) / "home"
    target = with_overrides(load_target("local", environ={}), home=home)
    spark, start_seconds = timed(get_spark, target)
    print(f"lakehouse in {home}; Spark started in {start_seconds:.1f} s")
    _, land_seconds = timed(land_source_files, target)
    ensure_schema(spark, target)
    _, dimension_seconds = timed(lambda: (ingest_dimensions(spark, target), refine_dimensions(spark, target)))
    print(f"landing {land_seconds:.1f} s, dimensions (bronze + silver) {dimension_seconds:.1f} s\n")
    header = f"{'month':>8} {'rows':>7} {'bronze s':>9} {'silver s':>9} {'gold s':>7} {'dbxml s':>8} {'plain s':>8} {'ratio':>6}"
    print(header)
    totals = {"rows": 0, "bronze": 0.0, "silver": 0.0, "gold": 0.0, "plain": 0.0}
    for month in months:
        bronze, bronze_seconds = timed(ingest_month, spark, target, month)
        plain_rows, plain_seconds = timed(plain_month, spark, target, month)
        silver, silver_seconds = timed(refine_month, spark, target, month)
        _, gold_seconds = timed(build_month, spark, target, month)
        ours = silver_seconds + gold_seconds
        print(f"{month:>8} {bronze['rows']:>7} {bronze_seconds:>9.2f} {silver_seconds:>9.2f} {gold_seconds:>7.2f} "
              f"{ours:>8.2f} {plain_seconds:>8.2f} {ours / plain_seconds:>6.2f}"
              + ("" if plain_rows == silver["silver"] else f"  (plain kept {plain_rows} rows, dbxml {silver['silver']})"))
        for key, value in [("rows", bronze["rows"]), ("bronze", bronze_seconds), ("silver", silver_seconds),
                           ("gold", gold_seconds), ("plain", plain_seconds)]:
            totals[key] += value
    ours = totals["silver"] + totals["gold"]
    print(f"{'total':>8} {totals['rows']:>7} {totals['bronze']:>9.2f} {totals['silver']:>9.2f} {totals['gold']:>7.2f} "
          f"{ours:>8.2f} {totals['plain']:>8.2f} {ours / totals['plain']:>6.2f}")
    print(f"\nrows per second, silver + gold: dbxml {totals['rows'] / ours:,.0f}, plain {totals['rows'] / totals['plain']:,.0f}; "
          f"bronze {totals['rows'] / totals['bronze']:,.0f}")
    print(f"ratio dbxml / plain (goal <= 1.10): {ours / totals['plain']:.2f}")
    # for tests/benchmarks/report.py
    print("RESULT " + json.dumps({"months": len(months), "rows": totals["rows"], "dbxml_s": ours, "plain_s": totals["plain"],
                                  "ratio": ours / totals["plain"]}))


if __name__ == "__main__":
    main()
