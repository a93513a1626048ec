# %% [markdown]
# # Gold
# > What people and models read: on-time performance marts, and one feature row per
# > flight for the delay model, rebuilt a month at a time.
#
# Gold is computed from silver one month at a time and written with `replace_rows`, so
# a month is replaced whole in one commit: rerunning it gives the same table, and a
# late correction in silver reaches gold by rerunning its month. Each commit's note
# records the silver version it was computed from.

# %%
#| default_exp gold

# %%
#| export
from __future__ import annotations

from functools import reduce

import pandas as pd
from matplotlib.figure import Figure
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dbxml import __version__
from dbxml.config import DbxmlError, Target
from dbxml.tables import Column, TableSpec, latest_note, replace_rows, table_version
from dbxml.usecase import UseCase, use_case_of

# %%
#| hide
import json
import re

from fastcore.test import test_eq
from IPython.display import HTML

from dbxml.bronze import ingest_dimensions, ingest_month
from dbxml.catalog import table_name
from dbxml.config import find_config, load_target, scratch_target
from dbxml.silver import refine_dimensions, refine_month
from dbxml.sources import land_source_files
from dbxml.spark import get_spark
from dbxml.tables import last_commit_note

# %% [markdown]
# ## On-time performance
#
# One row per month, carrier and origin airport: how many flights were scheduled, how
# many were cancelled, the share of departures 15 or more minutes late (the US DOT's
# definition of a delayed flight), and the mean and 90th percentile of the departure
# delay. The percentile is exact, not approximate, so a rerun gives the same number.

# %%
#| export
DELAY_THRESHOLD = 15  # minutes: a departure this late or later counts as delayed

ONTIME_SPEC = TableSpec(
    "gold_ontime", "On-time performance by month, carrier and origin airport.",
    (Column("month", "STRING", "Month of the scheduled departures, YYYY-MM.", nullable=False),
     Column("carrier", "STRING", "Two-letter carrier code.", nullable=False),
     Column("carrier_name", "STRING", "The airline's name."),
     Column("origin", "STRING", "Origin airport.", nullable=False),
     Column("flights", "BIGINT", "Scheduled flights."),
     Column("cancelled", "BIGINT", "Flights that never departed."),
     Column("delayed", "BIGINT", f"Departures {DELAY_THRESHOLD} or more minutes late."),
     Column("delayed_share", "DOUBLE", "delayed / departed flights; null when none departed."),
     Column("mean_dep_delay", "DOUBLE", "Mean departure delay of departed flights, minutes."),
     Column("p90_dep_delay", "DOUBLE", "90th percentile of the departure delay, minutes (exact)."),
     Column("mean_arr_delay", "DOUBLE", "Mean arrival delay, minutes.")),
    keys=("month", "carrier", "origin"))

def ontime(flights: DataFrame,  # silver flights
          ) -> DataFrame:
    "On-time performance of `flights` by month, carrier and origin."
    delayed = F.col("dep_delay") >= DELAY_THRESHOLD
    return (flights.withColumn("month", F.col("_batch"))
            .groupBy("month", "carrier", "carrier_name", "origin")
            .agg(F.count("*").alias("flights"), F.count_if("cancelled").alias("cancelled"),
                 F.count_if(delayed).alias("delayed"),
                 (F.count_if(delayed) / F.count("dep_delay")).alias("delayed_share"),
                 F.avg("dep_delay").alias("mean_dep_delay"),
                 F.percentile("dep_delay", 0.9).alias("p90_dep_delay"),
                 F.avg("arr_delay").alias("mean_arr_delay")))


# %% [markdown]
# ## Features for the delay model
#
# One row per flight with only what is known before it leaves: the schedule, the route,
# the airline, the plane, and the weather at the origin in the scheduled hour (the
# observed weather stands in for the forecast a real system would use). The label
# `delayed` is 1 when the departure was 15 or more minutes late; it is null for a
# cancelled flight, whose delay is unknown, and `dep_delay` is kept beside it for
# monitoring. Change Data Feed is on, so a consumer can ask what changed since a version.

# %%
#| export
FEATURES = {  # feature -> (type, comment); all known before departure
    "carrier": ("STRING", "Two-letter carrier code."),
    "origin": ("STRING", "Origin airport."),
    "dest": ("STRING", "Destination airport."),
    "distance": ("DOUBLE", "Miles between the airports."),
    "dep_hour": ("INT", "Scheduled departure hour, local."),
    "day_of_week": ("INT", "Day of the week of the scheduled departure, 1 = Sunday ... 7 = Saturday."),
    "day_of_year": ("INT", "Day of the year of the scheduled departure."),
    "plane_age": ("INT", "Age of the plane in years at the flight; null if unknown."),
    "plane_seats": ("INT", "Seats on the plane; null if unknown."),
    "temp": ("DOUBLE", "Temperature at the origin in the scheduled hour, F."),
    "humid": ("DOUBLE", "Relative humidity at the origin, %."),
    "wind_speed": ("DOUBLE", "Wind speed at the origin, mph."),
    "wind_gust": ("DOUBLE", "Gust speed at the origin, mph."),
    "precip": ("DOUBLE", "Precipitation at the origin, inches."),
    "pressure": ("DOUBLE", "Sea level pressure at the origin, millibars."),
    "visib": ("DOUBLE", "Visibility at the origin, miles."),
}
LABEL = "delayed"
FEATURES_SPEC = TableSpec(
    "gold_flight_features", "One row per flight: pre-departure features and the delay label for the delay model.",
    (Column("flight_id", "STRING", "The flight (see silver_flights).", nullable=False),
     Column("month", "STRING", "Month of the scheduled departure, YYYY-MM.", nullable=False),
     Column("scheduled_departure", "TIMESTAMP", "Scheduled departure instant."),
     *[Column(name, kind, comment) for name, (kind, comment) in FEATURES.items()],
     Column(LABEL, "INT", f"Label: 1 if the departure was {DELAY_THRESHOLD}+ minutes late, 0 if not, null if cancelled."),
     Column("dep_delay", "DOUBLE", "The departure delay in minutes (an outcome, not a feature)."),
     Column("cancelled", "BOOLEAN", "The flight never departed.")),
    keys=("flight_id",), properties={"delta.enableChangeDataFeed": "true"})

def flight_features(flights: DataFrame,  # silver flights
                   ) -> DataFrame:
    "One feature row per flight of `flights`."
    local_departure = F.make_timestamp_ntz("year", "month", "day", "hour", "minute", F.lit(0))
    return flights.select(
        "flight_id", F.col("_batch").alias("month"), "scheduled_departure", "carrier", "origin", "dest", "distance",
        F.col("hour").alias("dep_hour"), F.dayofweek(local_departure).alias("day_of_week"),
        F.dayofyear(local_departure).alias("day_of_year"), (F.col("year") - F.col("plane_year")).alias("plane_age"),
        "plane_seats", "temp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib",
        F.when(~F.col("cancelled"), (F.col("dep_delay") >= DELAY_THRESHOLD).cast("int")).alias(LABEL),
        "dep_delay", "cancelled")


# %% [markdown]
# ## Building a month
#
# Both tables are replaced for the month, then checked against silver: one feature row
# per silver flight, and the marts account for every flight. `build_month` builds the
# gold of the target's use case ([the use case](17_usecase.ipynb)): for the demo, the two
# tables above from `silver_flights`.

# %%
#| export
def gold_inputs(spark: SparkSession, target: Target, month: str,
                use_case: UseCase | None = None,  # default: the target's
               ) -> dict | None:
    "What gold's `month` is made from: the inputs silver recorded for that month, and dbxml's version."
    use_case = use_case or use_case_of(target)
    silver = latest_note(spark, use_case.silver.on(target).name, stage="silver", batch=month)
    return {"silver": silver.get("inputs"), "dbxml": __version__} if silver and silver.get("inputs") else None


# %% [markdown]
# `build_month` replaces both tables' month only when its inputs changed, then
# reconciles them with silver either way.

# %%
#| export
def build_month(spark: SparkSession, target: Target,
                month: str,  # `YYYY-MM`
               ) -> dict:
    "Rebuild the use case's mart and features (the demo's `gold_ontime`, `gold_flight_features`) for `month`."
    use_case = use_case_of(target)
    silver, marts, features = (spec.on(target) for spec in (use_case.silver, use_case.marts, use_case.features))
    if not silver.exists(spark):
        raise DbxmlError(f"{silver.name} does not exist: run the silver stage first.")
    records = silver.read(spark).where(F.col("_batch") == month)
    inputs = gold_inputs(spark, target, month, use_case)
    counted = F.col(use_case.counted) if use_case.counted else F.lit(1)
    def counts():
        "Silver rows, feature rows, rows the marts count (else mart rows), mart rows: of `month`, in one Spark job."
        in_month = F.col("month") == month
        parts = {"silver": (records, F.lit(1)), "features": (features.read(spark).where(in_month), F.lit(1)),
                 "marts": (marts.read(spark).where(in_month), counted)}
        union = reduce(DataFrame.unionByName, [frame.select(F.lit(part).alias("part"), value.cast("bigint").alias("value"))
                                               for part, (frame, value) in parts.items()])
        found = {row["part"]: row for row in
                 union.groupBy("part").agg(F.count("*").alias("rows"),
                                          F.coalesce(F.sum("value"), F.lit(0)).alias("counted")).collect()}
        rows = {part: found[part]["rows"] if part in found else 0 for part in parts}
        return rows["silver"], rows["features"], found["marts"]["counted"] if "marts" in found else 0, rows["marts"]
    def reconciles(silver_rows, feature_rows, in_marts, mart_rows):
        return silver_rows == feature_rows and (in_marts == silver_rows or not use_case.counted)
    built = inputs is not None and all((latest_note(spark, table.name, stage="gold", month=month) or {}).get("inputs")
                                       == inputs for table in (marts, features))
    if built and reconciles(*counts()):  # same inputs, and it reconciles: nothing to do
        written = False
    else:
        note = {"stage": "gold", "month": month, "inputs": inputs, "silver_version": table_version(spark, silver.name)}
        replace_rows(use_case.mart(records), marts, {"month": month}, note)
        replace_rows(use_case.featurize(records), features, {"month": month}, note)
        written = True
    silver_rows, feature_rows, in_marts, mart_rows = counts()
    if not reconciles(silver_rows, feature_rows, in_marts, mart_rows):
        raise DbxmlError(f"gold for {month} does not reconcile with silver: {silver_rows} silver rows, "
                         f"{feature_rows} feature rows" + (f", {in_marts} counted in the marts ({use_case.counted})."
                                                            if use_case.counted else "."))
    return {"month": month, "silver": silver_rows, "features": feature_rows, "mart_rows": mart_rows,
            "written": written}


# %% [markdown]
# January from the real data:

# %%
scratch = scratch_target()
spark = get_spark(scratch)
land_source_files(scratch)
ingest_dimensions(spark, scratch)
ingest_month(spark, scratch, "2013-01")
refine_dimensions(spark, scratch)
silver = refine_month(spark, scratch, "2013-01")
january = build_month(spark, scratch, "2013-01")
print(january)
test_eq(january["features"], silver["silver"])
marts = spark.table(table_name(scratch, "gold_ontime").on(scratch))
marts.orderBy(F.desc("flights")).show(5)
ua_ewr = marts.where("carrier = 'UA' AND origin = 'EWR'").first()
assert 0 < ua_ewr["delayed_share"] < 1 and ua_ewr["mean_dep_delay"] <= ua_ewr["p90_dep_delay"]
features = spark.table(table_name(scratch, "gold_flight_features").on(scratch))
test_eq(features.where("cancelled").where(f"{LABEL} IS NOT NULL").count(), 0)
test_eq(features.where("flight_id = '2013-01-01/UA1545/EWR'").select("dep_hour", "day_of_week", LABEL).first().asDict(),
        {"dep_hour": 5, "day_of_week": 3, LABEL: 0})  # 1 January 2013 was a Tuesday
test_eq(last_commit_note(spark, table_name(scratch, "gold_flight_features").on(scratch))["month"], "2013-01")

# %% [markdown]
# January's mart, its ten busiest pairs of carrier and origin:

# %%
#| results
busiest = marts.orderBy(F.desc("flights"), "carrier", "origin").limit(10).toPandas()
HTML(busiest.round(3).to_html(index=False))

# %% [markdown]
# The bundle's AI/BI dashboard (`dashboards/ontime.lvdash.json`, deployed by
# `resources/dashboard.yml`) reads this mart. Its datasets run here as a SQL warehouse
# would run them, and every column its charts use comes out of its dataset:

# %%
dashboard = json.loads((find_config().parent / "dashboards" / "ontime.lvdash.json").read_text())
spark.sql(f"USE {table_name(scratch, 'gold_ontime').on(scratch).rsplit('.', 1)[0]}")  # the dataset schema
columns = {dataset["name"]: set(spark.sql("".join(dataset["queryLines"])).columns) for dataset in dashboard["datasets"]}
for item in dashboard["pages"][0]["layout"]:
    [query] = item["widget"]["queries"]
    used = {name for field in query["query"]["fields"] for name in re.findall(r"`(\w+)`", field["expression"])}
    assert used <= columns[query["query"]["datasetName"]], (item["widget"]["name"], used)
test_eq(spark.sql("".join(dashboard["datasets"][0]["queryLines"])).where("origin = 'EWR'").first()["flights"],
        marts.where("origin = 'EWR'").agg(F.sum("flights")).first()[0])

# %% [markdown]
# Building the month again from the same silver writes nothing (no new Delta version,
# see `latest_note`); after silver changed, it replaces the month: the same rows, not
# twice as many.

# %%
version = table_version(spark, table_name(scratch, "gold_flight_features").on(scratch))
test_eq(build_month(spark, scratch, "2013-01"), {**january, "written": False})
test_eq(table_version(spark, table_name(scratch, "gold_flight_features").on(scratch)), version)
spark.sql(f"DELETE FROM {table_name(scratch, 'gold_flight_features').on(scratch)} WHERE month = '2013-01' AND dep_hour = 5")
rebuilt = build_month(spark, scratch, "2013-01")  # the notes match, but the counts do not reconcile: rebuilt
test_eq((rebuilt["features"], rebuilt["mart_rows"], rebuilt["written"]), (january["features"], january["mart_rows"], True))
test_eq(features.count(), january["features"])


# %% [markdown]
# ## As a job task
#
# This stage runs as the `lakehouse` task of the bundle's `monthly` job, through the
# pipeline notebook [`pipelines/lakehouse.ipynb`](pipelines/lakehouse.ipynb), which declares its
# parameters; `dbxml run` runs that job locally (see [the runner](32_runner.ipynb)).

# %% [markdown]
# ## The year on time
#
# The on-time charts of the year, month by month: how many flights each airport
# scheduled, and the share of departures 15 or more minutes late. The dashboard in the
# bundle (`resources/dashboard.yml`) draws the same two charts from the same mart.

# %%
#| export
def ontime_figure(marts: pd.DataFrame,  # rows of `gold_ontime`
                 ) -> Figure:
    "Flights by month and origin, and the share of delayed departures by month and origin."
    by_origin = marts.groupby(["month", "origin"])[["flights", "cancelled", "delayed"]].sum().unstack("origin")
    share = by_origin["delayed"] / (by_origin["flights"] - by_origin["cancelled"])
    figure = Figure(figsize=(9, 6))
    flights_axes, share_axes = figure.subplots(2, 1, sharex=True)
    by_origin["flights"].plot.bar(ax=flights_axes, stacked=True, rot=0)
    flights_axes.set(ylabel="scheduled flights", title="Flights by origin airport")
    for origin in share.columns:
        share_axes.plot(range(len(share)), share[origin].to_numpy(), marker="o", label=origin)
    share_axes.set(ylabel=f"departures {DELAY_THRESHOLD}+ min late", xlabel="month",
                   title="Share of delayed departures")
    share_axes.yaxis.set_major_formatter(lambda value, position: f"{value:.0%}")
    share_axes.legend()
    figure.tight_layout()
    return figure


# %% [markdown]
# Two made-up months check the shares (one cancelled flight is not a departure):

# %%
made_up = pd.DataFrame({"month": ["2015-01", "2015-01", "2015-02"], "origin": ["EWR", "JFK", "EWR"],
                        "flights": [10, 4, 5], "cancelled": [2, 0, 0], "delayed": [4, 1, 5]})
figure = ontime_figure(made_up)
share_axes = figure.axes[1]
test_eq({line.get_label(): list(line.get_ydata()) for line in share_axes.lines}["EWR"], [0.5, 1.0])

# %% [markdown]
# The real year, from the local target after `make run` (this cell is one of the
# notebook's results, see [results](07_results.ipynb)):

# %%
#| results
#| year
year = load_target("local")
year_spark = get_spark(year)
ontime_figure(year_spark.table(table_name(year, ONTIME_SPEC.table).on(year)).toPandas())
