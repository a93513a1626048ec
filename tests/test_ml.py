"""The model lifecycle end to end on a real first quarter, run by the in-process executor: the first model
becomes champion, a model trained on shuffled labels never does, reruns leave the same tables, a fresh process
loads the champion by alias and its signature refuses a wrong frame, a model version leads back to the exact
Delta versions it learnt from, and the MLflow UI shows it all. (Each stage's own behaviour is tested in its
notebook; Spark Connect's scoring against classic Spark's is in test_jobs, on the papermill run's lakehouse.)"""
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import BIN, ROOT, free_port

pytestmark = pytest.mark.slow  # a real quarter and a model, on a Spark of its own

JOB = str(ROOT / "tests" / "support" / "ml_job.py")
MODEL = "local.flights.flight_delay"


def run_python(code, *args, timeout=900):
    "Run `code` in a fresh Python process (where `support` imports); return its last output line as JSON."
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT / "tests", capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def quarter(tmp_path_factory):
    "A home where the monthly job ran in-process over January to March; what the job printed."
    home = tmp_path_factory.mktemp("ml") / "home"
    done = subprocess.run([sys.executable, JOB, str(home)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    return home, json.loads(done.stdout.splitlines()[-1])


def test_the_first_model_becomes_champion_and_the_next_month_is_scored_and_monitored(quarter):
    january, february, march = (quarter[1]["quarter"][month] for month in ("2013-01", "2013-02", "2013-03"))
    assert january["score"] == {"rows": 0}
    assert january["monitor"] == {"retrain": False, "reason": "no earlier month to learn from"}
    assert january["retrain_needed"] == {"outcome": "false"} and january["train"] == {}  # excluded: no values
    assert january["record_month"] == {"recorded": "2013-01"}
    assert february["monitor"] == {"retrain": True, "reason": "first model"}
    assert (february["train"]["model_version"], february["promote"]["promoted"]) == ("1", True)
    assert march["score"] == {"rows": 28_834, "model_version": "1"}
    assert 0 <= march["monitor"]["max_psi"] and 0.5 < march["monitor"]["roc_auc"] < 1


def test_a_model_trained_on_shuffled_labels_never_becomes_champion(quarter):
    shuffled = quarter[1]["shuffled"]
    assert not shuffled["promoted"]
    assert (shuffled["champion"], shuffled["challenger"]) == ("1", shuffled["version"])
    assert any("below the floor" in reason for reason in shuffled["reasons"]), shuffled["reasons"]


def test_rerunning_a_month_leaves_predictions_and_monitoring_identical(quarter):
    results = quarter[1]
    first, after = results["digests"]
    assert first == after, "rerunning March changed the predictions or the monitoring tables"
    assert results["rerun"]["monitor"] == results["quarter"]["2013-03"]["monitor"]
    assert results["rerun"]["lakehouse"]["state"] == "unchanged"


LOAD_BY_ALIAS = """
import json, sys
import mlflow
from mlflow.exceptions import MlflowException
home = sys.argv[1]
mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db"); mlflow.set_registry_uri(f"sqlite:///{home}/mlflow.db")
uri = "models:/local.flights.flight_delay@champion"
model = mlflow.pyfunc.load_model(uri)
example = mlflow.models.Model.load(uri).load_input_example(mlflow.artifacts.download_artifacts(uri))
probabilities = model.predict(example)
errors = {}
for name, frame in {"missing_column": example.drop(columns=["dest"]),
                    "text_for_number": example.assign(distance=example["distance"].astype(str) + " miles")}.items():
    try:
        model.predict(frame)
        errors[name] = None
    except MlflowException as error:
        errors[name] = str(error)
print(json.dumps({"rows": len(example), "shape": list(probabilities.shape),
                  "probabilities": probabilities[:, 1].tolist(), "row_sums": probabilities.sum(axis=1).tolist(),
                  "errors": errors}))
"""


def test_a_fresh_process_loads_the_champion_by_alias_and_its_signature_refuses_a_wrong_frame(quarter):
    home, _ = quarter
    loaded = run_python(LOAD_BY_ALIAS, home)
    assert loaded["shape"] == [loaded["rows"], 2] and loaded["rows"] > 0
    assert all(0 < value < 1 for value in loaded["probabilities"])
    assert all(abs(total - 1) < 1e-9 for total in loaded["row_sums"])
    assert "Model is missing inputs ['dest']" in loaded["errors"]["missing_column"]
    assert "distance" in loaded["errors"]["text_for_number"]


def test_a_model_version_leads_back_to_the_exact_delta_versions_it_was_trained_on(quarter):
    results = quarter[1]
    walk = results["walk_back"]
    assert walk["source"]["table"].endswith("local__flights.gold_flight_features")
    assert walk["tags"]["training_table_version"] == str(walk["source"]["version"])
    assert json.loads(walk["tags"]["training_data"])["training"]["months"] == ["2013-01"]
    # the table moved on after training, yet its pinned version gives exactly the rows the model learnt from
    assert results["features_version"]["after"] > results["features_version"]["before_rebuild"] > walk["source"]["version"]
    assert walk["pinned_rows"] == walk["training_rows"] > 20_000
    assert walk["pinned_months"] == ["2013-01", "2013-02"] and "2013-03" in walk["latest_months"]
    # and that gold version's commit names the silver version it was built from
    assert walk["note"]["stage"] == "gold" and isinstance(walk["note"]["silver_flights_version"], int)
    assert len(walk["tags"]["git_commit"]) in (40, len("unknown"))


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_the_mlflow_ui_shows_the_runs_the_figures_and_the_champion(quarter):
    home, _ = quarter
    port = free_port()
    env = {**os.environ, "DBXML_HOME": str(home), "DBXML_TARGET": "local"}
    server = subprocess.Popen([str(BIN / "dbxml"), "ui", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the MLflow UI did not start"
                time.sleep(1)
        model = get_json(f"{base}/api/2.0/mlflow/registered-models/get?name={MODEL}")["registered_model"]
        assert {"alias": "champion", "version": "1"} in model["aliases"]
        experiment = get_json(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=/Shared/dbxml/flight_delay")
        request = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", method="POST",
                                         data=json.dumps({"experiment_ids": [experiment["experiment"]["experiment_id"]],
                                                          "filter": "tags.`dbxml.stage` = 'train'"}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            runs = json.load(response)["runs"]
        assert len(runs) >= 2
        figure = urllib.request.urlopen(f"{base}/get-artifact?path=figures/roc.png&run_uuid={runs[0]['info']['run_id']}",
                                        timeout=10).read()
        assert figure.startswith(b"\x89PNG")
    finally:
        server.terminate()
        server.wait(timeout=90)
    # stopping `dbxml ui` stops the MLflow server and its workers too
    leftovers = subprocess.run(["pgrep", "-f", f"mlflow ui --backend-store-uri sqlite:///{home}"],
                               capture_output=True, text=True).stdout.split()
    assert not leftovers, f"MLflow UI processes outlived dbxml ui: {leftovers}"


TRAIN_WITHOUT_GOLD = """
import json, sys
from pathlib import Path
from dbxml.config import load_target, with_overrides
from dbxml.jobs import load_job
from dbxml.runner import InProcessExecutor
target = with_overrides(load_target("local", environ={}), home=Path(sys.argv[1]))
task = load_job("monthly", target).task("train")
values, error, trace = InProcessExecutor(target).run(task, {"target_name": "local", "month": "2013-02", "window": 1},
                                                     Path(sys.argv[1]))
print(json.dumps({"values": values, "error": error, "trace": trace.read_text()}))
"""


def test_training_without_gold_is_one_clear_error_and_its_traceback_is_kept(tmp_path):
    failed = run_python(TRAIN_WITHOUT_GOLD, tmp_path)
    assert failed["values"] == {} and failed["error"].startswith("train_task raised DbxmlError: ")
    assert "build gold first" in failed["error"] and "\n" not in failed["error"]
    assert "Traceback" in failed["trace"]
