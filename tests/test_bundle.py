"""The Databricks bundle validates against the official bundle schema (vendored in tests/schemas), a typo in
it is caught, and the quality monitor it declares names columns the predictions table really has.
(Nothing here deploys: no workspace is reachable from CI.)"""
import yaml
from conftest import ROOT, run_tool

from dbxml.score import PREDICTIONS_SPEC

SCHEMA = ROOT / "tests" / "schemas" / "databricks-bundle.schema.json"
BUNDLE_FILES = [ROOT / "databricks.yml", *sorted((ROOT / "resources").glob("*.yml"))]


def validate(*paths):
    return run_tool("check-jsonschema", "--schemafile", str(SCHEMA), *map(str, paths))


def test_the_bundle_matches_the_official_schema():
    done = validate(*BUNDLE_FILES)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_misspelt_monitor_setting_is_rejected(tmp_path):
    text = (ROOT / "resources" / "monitoring.yml").read_text().replace("prediction_col:", "predicted_col:")
    (tmp_path / "monitoring.yml").write_text(text)
    done = validate(tmp_path / "monitoring.yml")
    assert done.returncode != 0 and "predicted_col" in done.stdout


def test_the_quality_monitor_watches_the_predictions_table_by_its_real_columns():
    monitor = yaml.safe_load((ROOT / "resources" / "monitoring.yml").read_text())["resources"]["quality_monitors"]
    settings = monitor["flight_delay_predictions"]
    assert settings["table_name"].endswith(f".{PREDICTIONS_SPEC.table}")
    columns = set(PREDICTIONS_SPEC.column_names)
    used = {value for key, value in settings["inference_log"].items() if key.endswith("_col")}
    assert used and used <= columns, used - columns
    assert set(settings["slicing_exprs"]) <= columns
