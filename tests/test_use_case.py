"""Bring your own data: a second, tiny use case (`tests/support/rain.py`: hourly weather, "rain in the next hour")
runs through the same stages, tasks and job graph as the flights demo, named by `DBXML_USE_CASE` alone, with no
change under `dbxml/`."""
import os
import subprocess

import pytest
from conftest import BIN, ROOT
from deltalake import DeltaTable
from mlflow import MlflowClient
from support import rain

from dbxml.config import load_target, with_overrides

SUPPORT = ROOT / "tests" / "support"
MONTHS = ["2013-01", "2013-02", "2013-03"]
# two records February's file should not have: an impossible humidity, and a station the stations file lacks
BAD_LINES = ["EWR,2013-02-10T12:00:00Z,40.0,30.0,150.0,1010.0,0", "ZZZ,2013-02-10T12:00:00Z,40.0,30.0,60.0,1010.0,0"]


def read(home, table):
    "A table of the rain schema, read with delta-rs (not the Spark that wrote it)."
    return DeltaTable(str(home / "warehouse" / "local__rain.db" / table)).to_pandas()


@pytest.fixture(scope="module")
def rain_run(tmp_path_factory):
    "`dbxml run` over January to March with the rain use case, February's file holding two bad records."
    home = tmp_path_factory.mktemp("rain") / "home"
    target = with_overrides(load_target("local", environ={}), home=home, schema="rain", use_case="rain:RAIN")
    rain.land_readings(target)
    february = home / "raw" / "readings" / "2013-02.csv"
    february.write_text(february.read_text() + "\n".join(BAD_LINES) + "\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("DBXML_")} | {
        "DBXML_HOME": str(home), "DBXML_TARGET": "local", "DBXML_SCHEMA": "rain", "DBXML_USE_CASE": "rain:RAIN",
        "PYTHONPATH": str(SUPPORT)}
    done = subprocess.run([str(BIN / "dbxml"), "run", "-p", f"month={MONTHS[0]}..{MONTHS[-1]}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    return {"home": home, "done": done}


@pytest.mark.slow
def test_the_rain_use_case_runs_the_monthly_job_end_to_end(rain_run):
    done, home = rain_run["done"], rain_run["home"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "FAILED" not in done.stdout, done.stdout[-3000:]
    watermark = read(home, "processed_months")
    assert sorted(watermark["month"]) == MONTHS
    tables = {path.name for path in (home / "warehouse" / "local__rain.db").iterdir()}
    assert {"bronze_readings", "bronze_stations", "silver_readings", "silver_stations", "gold_rain",
            "gold_rain_features", "rain_next_hour_predictions", "monitor_rain_next_hour"} <= tables, tables
    assert not [name for name in tables if "flight" in name], tables  # nothing of the demo was built


@pytest.mark.slow
def test_every_reading_is_in_silver_or_quarantined_with_its_rule(rain_run):
    home = rain_run["home"]
    bronze, silver, quarantine = (read(rain_run["home"], name) for name in ("bronze_readings", "silver_readings",
                                                                            "quarantine"))
    quarantine = quarantine[quarantine.source_table == "bronze_readings"]
    for month in MONTHS:
        landed = (home / "raw" / "readings" / f"{month}.csv").read_text().strip().count("\n")  # lines after the header
        held = (bronze._batch == month).sum()
        assert held == landed == (silver._batch == month).sum() + (quarantine.batch == month).sum(), month
    assert sorted(quarantine.rule) == ["known_station", "plausible_humidity"]
    assert set(quarantine.batch) == {"2013-02"}


@pytest.mark.slow
def test_gold_has_a_feature_row_per_reading_and_the_mart_counts_them_all(rain_run):
    silver, features, mart = (read(rain_run["home"], name) for name in ("silver_readings", "gold_rain_features",
                                                                        "gold_rain"))
    for month in MONTHS:
        readings = (silver._batch == month).sum()
        assert (features.month == month).sum() == readings == mart[mart.month == month].readings.sum()
    assert set(features.rain_next_hour.dropna()) == {0, 1}  # both outcomes occur: a real label


@pytest.mark.slow
def test_the_champion_scores_march_and_its_monitoring_names_the_use_cases_prediction(rain_run):
    home = rain_run["home"]
    client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db", registry_uri=f"sqlite:///{home}/mlflow.db")
    champion = client.get_model_version_by_alias("local.rain.rain_next_hour", "champion")
    assert float(champion.tags["validation_roc_auc"]) > 0.6
    predictions, features = read(home, "rain_next_hour_predictions"), read(home, "gold_rain_features")
    march = predictions[predictions.month == "2013-03"]
    assert len(march) == (features.month == "2013-03").sum() and march.rain_probability.between(0, 1).all()
    monitored = read(home, "monitor_rain_next_hour")
    prediction_rows = monitored[(monitored.month == "2013-03") & (monitored.kind == "prediction")]
    assert set(prediction_rows.subject) == {"rain_probability"}


def test_the_framework_does_not_know_the_second_use_case():
    mentions = [path.name for path in (ROOT / "dbxml").glob("*.py")
                if any(word in path.read_text() for word in ("rain_next_hour", "land_readings", "support.rain"))]
    assert mentions == []
