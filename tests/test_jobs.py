"""The job graph is written once, in the bundle, and `dbxml run` executes it: every task's parameters match its
notebook's parameters cell; the runner's order, conditions and failure handling on small real notebooks; and the
monthly job end to end on one Spark Connect server (one JVM), with its notebooks kept and logged to MLflow, its
champion loaded by alias in a fresh process and shown by the MLflow UI."""
import inspect
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import mlflow
import nbformat
import pytest
from conftest import BIN, ROOT, environment_without_pandas, free_port, run_tool
from support.sample_months import land_sample

from dbxml.catalog import table_name
from dbxml.config import DbxmlError, load_target, with_overrides
from dbxml.jobs import Dependency, Job, Task, bundle_files, load_job, read_yaml
from dbxml.params import task_values
from dbxml.runner import (
    FAILED,
    JOBS_EXPERIMENT,
    SUCCESS,
    UPSTREAM_FAILED,
    KernelPool,
    PapermillExecutor,
    notebook_defaults,
    run_graph,
    run_plans,
    task_parameters,
)
from dbxml.score import score_month
from dbxml.spark import connect_server, ensure_delta_jars, get_spark
from dbxml.tables import content_digest
from dbxml.tasks import TASKS

JOBS = sorted({key for path in bundle_files(ROOT) for key in read_yaml(path).get("resources", {}).get("jobs", {})})


@pytest.mark.parametrize("target_name", ["local", "dev", "staging", "prod"])
@pytest.mark.parametrize("job_name", JOBS)
def test_every_task_passes_exactly_the_parameters_its_notebook_declares(job_name, target_name):
    job = load_job(job_name, load_target(target_name))
    notebook_tasks = [task for task in job.tasks if task.notebook]
    assert notebook_tasks
    for task in notebook_tasks:
        assert task.notebook.is_file(), task.notebook
        assert set(task.parameters) == set(notebook_defaults(task.notebook)), task.key
        assert task.parameters["target_name"] == target_name


@pytest.mark.parametrize("job_name", JOBS)
def test_every_notebook_task_is_one_call_of_its_task_function_with_the_notebooks_parameters(job_name):
    for task in load_job(job_name, load_target("local")).tasks:
        if not task.notebook:
            continue
        function = TASKS[task.notebook.stem]
        parameters = list(inspect.signature(function).parameters)
        assert parameters[0] == "target", function.__name__
        assert set(parameters[1:]) == set(notebook_defaults(task.notebook)) - {"target_name"}, function.__name__
        code = [cell.source for cell in nbformat.read(task.notebook, as_version=4).cells if cell.cell_type == "code"]
        assert sum(source.count(f"{function.__name__}(") for source in code) == 1, task.notebook.name
        assert len(code) == 4, f"{task.notebook.name}: imports, parameters, job_parameters, the call"


def test_a_parameter_the_notebook_does_not_declare_is_refused_before_it_runs():
    task = load_job("monthly", load_target("local")).task("lakehouse")
    wrong = Task("lakehouse", notebook=task.notebook, parameters=task.parameters | {"months": "2013-01"})
    with pytest.raises(DbxmlError, match="task lakehouse passes months, which lakehouse.ipynb does not declare"):
        task_parameters(wrong, {"month": "2013-05"}, {})


@pytest.mark.slow
def test_papermill_runs_the_lakehouse_task_notebook_by_hand_with_a_month_parameter(local_env, tmp_path):
    "A pipeline notebook needs no runner: plain papermill, a month, the local target (its own classic Spark)."
    landed = land_sample(Path(local_env["DBXML_HOME"]), ["2013-03"], every=20)["2013-03"]  # a twentieth of March
    output = tmp_path / "lakehouse.ipynb"
    result = run_tool("papermill", str(ROOT / "nbs" / "pipelines" / "lakehouse.ipynb"), str(output),
                      "-p", "month", "2013-03", "--cwd", str(ROOT), env=local_env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    values = task_values(json.loads(output.read_text()))
    assert (values["bronze"], values["silver"] + values["quarantined"]) == (landed, landed)
    assert (values["volume"], values["state"]) == ("ok", "written")  # the month_complete condition reads volume


# --- the runner on small real notebooks (a real kernel each, no Spark) ---

def write_notebook(path, parameters, body):
    "A notebook with a `parameters` cell and one code cell."
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell("from dbxml.params import job_parameters, set_task_values"),
                      nbformat.v4.new_code_cell(body)]
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def toy_job(tmp_path_factory):
    """measure -> decide (a condition on its value) -> act -> report; `act` divides by the job parameter `divisor`;
    `finish` (run_if NONE_FAILED, like the monthly job's record_month) runs unless a task before it failed."""
    folder = tmp_path_factory.mktemp("toy")
    measure = write_notebook(folder / "measure.ipynb", "size = 1", "set_task_values(big=size > 10, size=size)")
    act = write_notebook(folder / "act.ipynb", "size = 0\ndivisor = 1", "set_task_values(rows=size // divisor)")
    report = write_notebook(folder / "report.ipynb", "rows = 0", "print('rows', rows)")
    finish = write_notebook(folder / "finish.ipynb", "size = 0", "set_task_values(finished=size)")
    return Job("toy", "toy", {"size": "1", "divisor": "1"}, (
        Task("measure", notebook=measure, parameters={"size": "{{job.parameters.size}}"}),
        Task("decide", (Dependency("measure"),), condition=("{{tasks.measure.values.big}}", "EQUAL_TO", "true")),
        Task("act", (Dependency("decide", "true"),), notebook=act,
             parameters={"size": "{{tasks.measure.values.size}}", "divisor": "{{job.parameters.divisor}}"}),
        Task("report", (Dependency("act"),), notebook=report, parameters={"rows": "{{tasks.act.values.rows}}"}),
        Task("finish", (Dependency("measure"), Dependency("report")), notebook=finish,
             parameters={"size": "{{tasks.measure.values.size}}"}, run_if="NONE_FAILED"),
    ))


@pytest.fixture(scope="module")
def papermill(tmp_path_factory):
    "The papermill executor, with a kernel pool for the module's toy runs."
    kernels = KernelPool(dict(os.environ), ROOT, tmp_path_factory.mktemp("kernels") / "kernels.log")
    yield PapermillExecutor(kernels)
    kernels.close()


def statuses(results):
    return {result.task: result.status for result in results}


@pytest.mark.slow
def test_the_condition_lets_the_branch_run_and_task_values_flow_as_typed_parameters(toy_job, papermill, tmp_path):
    results = run_graph(toy_job, {"size": "42", "divisor": "4"}, tmp_path, papermill)
    assert statuses(results) == dict.fromkeys(["measure", "decide", "act", "report", "finish"], SUCCESS)
    assert results[1].values == {"outcome": "true"}
    assert results[2].values == {"rows": 10}
    assert "rows 10" in (tmp_path / "report.ipynb").read_text()


@pytest.mark.slow
def test_a_failing_cell_is_named_its_dependants_do_not_run_and_the_partial_notebook_stays(toy_job, papermill, tmp_path):
    results = run_graph(toy_job, {"size": "42", "divisor": "0"}, tmp_path, papermill)
    assert statuses(results) == {"measure": SUCCESS, "decide": SUCCESS, "act": FAILED, "report": UPSTREAM_FAILED,
                                 "finish": UPSTREAM_FAILED}
    assert "`set_task_values(rows=size // divisor)`" in results[2].error
    assert "ZeroDivisionError" in results[2].error
    partial = nbformat.read(tmp_path / "act.ipynb", as_version=4)
    assert any(output.get("ename") == "ZeroDivisionError" for cell in partial.cells for output in cell.get("outputs", []))



def papermill_times(notebook):
    "When papermill started and ended an executed notebook."
    recorded = nbformat.read(notebook, as_version=4).metadata.papermill
    return datetime.fromisoformat(recorded.start_time), datetime.fromisoformat(recorded.end_time)


@pytest.mark.slow
def test_an_overlapped_backfill_starts_the_next_root_early_in_its_own_kernel_and_stops_after_a_failed_month(
        toy_job, papermill, tmp_path):
    "`dbxml run --overlap` (nbs/32_runner.ipynb): a month's root task runs in a second kernel beside the month before."
    backfill = [{"month": "m1", "size": "42", "divisor": "4"}, {"month": "m2", "size": "42", "divisor": "0"},
                {"month": "m3", "size": "42", "divisor": "2"}]
    results = run_plans(toy_job, backfill, tmp_path, papermill, overlap=True)
    assert [(result.run, result.task, result.status) for result in results[5:]] == [
        ("m2", "measure", SUCCESS), ("m2", "decide", SUCCESS), ("m2", "act", FAILED), ("m2", "report", UPSTREAM_FAILED),
        ("m2", "finish", UPSTREAM_FAILED), ("m3", "measure", SUCCESS)]
    assert statuses(results[:5]) == dict.fromkeys(["measure", "decide", "act", "report", "finish"], SUCCESS)
    assert results[-1].values == {"big": True, "size": 42} and results[2].values == {"rows": 10}
    measured = papermill_times(tmp_path / "m1" / "measure.ipynb")[1]
    assert measured <= papermill_times(tmp_path / "m2" / "measure.ipynb")[0] < \
        papermill_times(tmp_path / "m1" / "finish.ipynb")[1]
    assert {path.name for path in (tmp_path / "m3").iterdir()} == {"measure.ipynb"}  # nothing after the root ran

# --- the monthly job end to end ---

def spark_jvms():
    """The pids of running Spark driver JVMs: a local session or a Connect server (not launchers or version checks).

    A JVM that starts a subprocess (a Python worker, a shell command) forks first: for a moment the child has the
    JVM's command line. A child of a Spark JVM is not another JVM, so it is left out."""
    listing = subprocess.run(["ps", "-ww", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    rows = [line.split(maxsplit=2) for line in listing.split("\n")[1:] if len(line.split()) > 2]
    drivers = {int(pid): (int(parent), args) for pid, parent, args in rows
               if args.split()[0].endswith("java") and "deploy.SparkSubmit" in args and "launcher.Main" not in args}
    return {pid: f"{pid} {args}" for pid, (parent, args) in drivers.items() if parent not in drivers}


def run_watching_java(args, env, timeout=1800):
    "Run `dbxml` with `args`, noting every Spark JVM for its home (`DBXML_HOME`) that appears while it runs."
    before, seen = spark_jvms(), {}
    process = subprocess.Popen([str(BIN / "dbxml"), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.update({pid: args for pid, args in spark_jvms().items()
                         if pid not in before and env["DBXML_HOME"] in args})  # not other runs on this machine
            time.sleep(0.2)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        done.set()
        watcher.join()
    return process.returncode, stdout, stderr, seen


@pytest.fixture(scope="module")
def four_months(tmp_path_factory, python_without_pandas):
    """`dbxml run` over January to April, a quarter of the real flights each, with a `python3` first on PATH that
    cannot import pandas: January builds the lakehouse, February trains and promotes the first model, March is scored
    and monitored by the champion, and April's monitoring asks for a retrain that is trained and promoted."""
    home = tmp_path_factory.mktemp("run") / "home"
    land_sample(home, ["2013-01", "2013-02", "2013-03", "2013-04"], every=4)
    env = environment_without_pandas(python_without_pandas, home)
    ensure_delta_jars()  # a first-ever start resolves Delta's jars with a JVM of its own: not the run's
    code, stdout, stderr, javas = run_watching_java(["run", "-p", "month=2013-01..2013-04"], env)
    return {"home": home, "env": env, "code": code, "stdout": stdout, "stderr": stderr, "javas": javas}


def summary_rows(stdout):
    "The run's summary table as (run, task) -> its row's text."
    table = stdout.split("\nrun ")[-1].split("\n\n")[0].splitlines()[1:]
    return {tuple(line.split()[:2]): line for line in table}


@pytest.mark.slow
def test_the_monthly_job_runs_every_task_type_on_one_jvm_with_workers_on_the_projects_python(four_months):
    assert four_months["code"] == 0, four_months["stdout"][-3000:] + four_months["stderr"][-3000:]
    assert len(four_months["javas"]) == 1, four_months["javas"]
    rows = summary_rows(four_months["stdout"])
    assert "EXCLUDED" in rows["2013-01", "train"] and "no earlier month to learn from" in rows["2013-01", "monitor"]
    assert all("outcome true" in rows[month, "month_complete"] for month in ("2013-01", "2013-02", "2013-03", "2013-04"))
    assert "retrain true (first model)" in rows["2013-02", "monitor"]
    assert "SUCCESS" in rows["2013-02", "promote"] and "promoted True" in rows["2013-02", "promote"]
    # the champion scores March and April through Spark's Python workers
    for month in ("2013-03", "2013-04"):
        score, lakehouse = rows[month, "score"].split(), rows[month, "lakehouse"].split()
        assert (score[2], score[4]) == ("SUCCESS", lakehouse[4]), rows  # every flight of the month scored
    assert "EXCLUDED" in rows["2013-03", "train"] and "retrain false" in rows["2013-03", "monitor"]
    assert "retrain true (" in rows["2013-04", "monitor"] and "outcome true" in rows["2013-04", "retrain_needed"]
    assert all("SUCCESS" in rows["2013-04", task] for task in ("train", "promote")), rows
    # a backfill (an explicit range) is recorded in the watermark like a scheduled run
    assert processed(four_months["home"]) == dict.fromkeys(["2013-01", "2013-02", "2013-03", "2013-04"], "local")


@pytest.mark.slow
def test_every_executed_notebook_is_kept_and_logged_to_mlflow(four_months):
    runs = list((four_months["home"] / "runs").glob("*-monthly"))
    assert len(runs) == 1
    kept = {path.relative_to(runs[0]).as_posix() for path in runs[0].rglob("*.ipynb")}
    every_month = {f"{month}/{task}.ipynb" for month in ("2013-01", "2013-02", "2013-03", "2013-04")
                   for task in ("lakehouse", "score", "monitor", "record_month")}
    assert kept == every_month | {"2013-02/train.ipynb", "2013-02/promote.ipynb",
                                  "2013-04/train.ipynb", "2013-04/promote.ipynb"}
    february = nbformat.read(runs[0] / "2013-02" / "train.ipynb", as_version=4)
    assert any("injected-parameters" in cell.metadata.get("tags", []) for cell in february.cells)
    target = with_overrides(load_target("local", environ={}), home=four_months["home"])
    mlflow.set_tracking_uri(target.mlflow_tracking_uri)
    logged = mlflow.search_runs(experiment_names=[JOBS_EXPERIMENT], output_format="list")
    assert sorted(run.data.params["month"] for run in logged) == ["2013-01", "2013-02", "2013-03", "2013-04"]
    second = next(run for run in logged if run.data.params["month"] == "2013-02")
    artifacts = {item.path for item in mlflow.MlflowClient().list_artifacts(second.info.run_id, "notebooks")}
    assert "notebooks/promote.ipynb" in artifacts and second.info.status == "FINISHED"
    assert second.info.artifact_uri.startswith((four_months["home"] / "mlartifacts").as_uri())
    summary = mlflow.artifacts.load_dict(f"runs:/{second.info.run_id}/summary.json")
    assert [row["status"] for row in summary["tasks"]] == ["SUCCESS"] * 8


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


@pytest.mark.slow
def test_a_fresh_process_loads_the_champion_by_alias_and_its_signature_refuses_a_wrong_frame(four_months):
    done = subprocess.run([sys.executable, "-c", LOAD_BY_ALIAS, str(four_months["home"])], capture_output=True,
                          text=True, timeout=600)  # MLflow alone: no Spark, no dbxml
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded["shape"] == [loaded["rows"], 2] and loaded["rows"] > 0
    assert all(0 < value < 1 for value in loaded["probabilities"])
    assert all(abs(total - 1) < 1e-9 for total in loaded["row_sums"])
    assert "Model is missing inputs ['dest']" in loaded["errors"]["missing_column"]
    assert "distance" in loaded["errors"]["text_for_number"]


def get_json(url, body=None):
    "GET `url` (POST `body` as JSON, if given) and return the JSON answer."
    request = urllib.request.Request(url, method="POST" if body else "GET", headers={"Content-Type": "application/json"},
                                     data=json.dumps(body).encode() if body else None)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.mark.slow
def test_the_mlflow_ui_shows_the_runs_the_figures_and_the_champion(four_months):
    home, port = four_months["home"], free_port()
    server = subprocess.Popen([str(BIN / "dbxml"), "ui", "--port", str(port)], cwd=ROOT, env=four_months["env"],
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
        model = get_json(f"{base}/api/2.0/mlflow/registered-models/get?name=local.flights.flight_delay")
        registry = mlflow.MlflowClient(registry_uri=f"sqlite:///{home}/mlflow.db")
        champion = str(registry.get_model_version_by_alias("local.flights.flight_delay", "champion").version)
        assert {"alias": "champion", "version": champion} in model["registered_model"]["aliases"]
        experiment = get_json(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=/Shared/dbxml/flight_delay")
        runs = get_json(f"{base}/api/2.0/mlflow/runs/search",
                        {"experiment_ids": [experiment["experiment"]["experiment_id"]],
                         "filter": "tags.`dbxml.stage` = 'train'"})["runs"]
        assert len(runs) == 2  # February's first model and April's retrain
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


@pytest.mark.slow
def test_training_without_gold_is_one_clear_error_and_its_traceback_is_kept(tmp_path):
    done = subprocess.run([sys.executable, "-c", TRAIN_WITHOUT_GOLD, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    failed = json.loads(done.stdout.splitlines()[-1])
    assert failed["values"] == {} and failed["error"].startswith("train_task raised DbxmlError: ")
    assert "build gold first" in failed["error"] and "\n" not in failed["error"]
    assert "Traceback" in failed["trace"]


# --- Spark's Python workers run the project's interpreter, not the first python3 on PATH ---

SCORE_CLASSIC = """
import json, sys
from pathlib import Path
from dbxml.config import load_target, with_overrides
from dbxml.score import score_month
from dbxml.spark import get_spark
from dbxml.catalog import table_name
from dbxml.tables import content_digest
target = with_overrides(load_target("local", environ={}), home=Path(sys.argv[1]))
spark = get_spark(target)
scored = score_month(spark, target, sys.argv[2])
predictions = content_digest(spark, table_name(target, "flight_delay_predictions").on(target), ("scored_at",))
print(json.dumps(scored | {"digest": predictions}))
"""


def march_flights(run):
    "March's flights in the feature table, as the run's lakehouse task reported them (March is scored by v1)."
    return int(summary_rows(run["stdout"])["2013-03", "lakehouse"].split()[4])


@pytest.fixture(scope="module")
def classic_march(four_months):
    "March scored again by classic Spark in a process of its own: what it wrote, and the predictions' digest."
    done = subprocess.run([sys.executable, "-c", SCORE_CLASSIC, str(four_months["home"]), "2013-03"],
                          env=four_months["env"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_classic_spark_scores_a_month_with_workers_on_the_projects_python(four_months, classic_march):
    assert classic_march["predictions"] == march_flights(four_months)


@pytest.mark.slow
def test_spark_connect_scores_a_month_as_classic_spark_does_with_workers_on_the_projects_python(
        four_months, classic_march, monkeypatch):
    monkeypatch.setenv("PATH", four_months["env"]["PATH"])  # the server inherits this process's environment
    home = four_months["home"]
    with connect_server(with_overrides(load_target("local", environ={}), home=home), port=free_port()) as url:
        target = with_overrides(load_target("connect", environ={}), home=home, spark_remote=url)
        spark = get_spark(target)
        assert type(spark).__module__.startswith("pyspark.sql.connect")
        scored = score_month(spark, target, "2013-03")
        predictions = content_digest(spark, table_name(target, "flight_delay_predictions").on(target), ("scored_at",))
        spark.stop()
    assert scored["predictions"] == march_flights(four_months)
    assert predictions == classic_march["digest"]  # every prediction as classic Spark wrote it


@pytest.mark.slow
def test_a_bad_month_fails_the_first_task_naming_it_and_its_cell_and_keeps_the_notebook(four_months):
    code, stdout, stderr, _ = run_watching_java(["run", "-p", "month=2013-13"], four_months["env"])
    assert code == 1
    assert "FAILED: 2013-13 lakehouse: cell" in stderr and "month '2013-13' is not of the form YYYY-MM" in stderr
    assert "Traceback" not in stderr
    partial = Path(stderr.split("partial notebook: ")[1].split()[0])
    assert partial.is_file() and "DbxmlError" in partial.read_text()
    assert "2013-13  score           UPSTREAM_FAILED" in stdout


# --- scheduled runs: no month means the next one ---

RECORD_MONTHS = """
import sys
from pathlib import Path
from dbxml.config import load_target, with_overrides
from dbxml.spark import get_spark
from dbxml.watermark import record_month
target = with_overrides(load_target("local", environ={}), home=Path(sys.argv[1]))
spark = get_spark(target)
for month in sys.argv[2:]:
    record_month(spark, target, month, run="test: the schedule went through the year")
"""


def processed(home):
    "The watermark table, read with delta-rs (not the Spark that wrote it): month -> run."
    from deltalake import DeltaTable
    table = DeltaTable(str(home / "warehouse" / "local__flights.db" / "processed_months")).to_pyarrow_table()
    return dict(zip(table.column("month").to_pylist(), table.column("run").to_pylist(), strict=True))


@pytest.mark.slow
def test_a_run_without_a_month_processes_the_next_landed_month_and_says_when_there_is_nothing_new(tmp_path):
    home = tmp_path / "home"
    land_sample(home, ["2013-01", "2013-02"], every=20)
    env = {key: value for key, value in dict(os.environ).items() if not key.startswith("DBXML_")} | \
        {"DBXML_HOME": str(home), "DBXML_TARGET": "local"}
    ran = []
    for flag in ("--in-process", "--profile"):  # January then February, in-process (the same graph), February profiled
        done = subprocess.run([str(BIN / "dbxml"), "run", flag], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=1800)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        print(done.stdout.split("\nrun ")[-1])
        ran.append(summary_rows(done.stdout))
    profile = {tuple(cells[:2]): [float(cell) for cell in cells[2:]] for line in done.stdout.splitlines()
               if line.startswith("| 2013-02 |") for cells in [[cell.strip() for cell in line.strip("|").split("|")]]}
    seconds, jobs, commits, log_files, data_files, rows, jvm_mb, python_mb = profile["2013-02", "lakehouse"]
    assert seconds > 0 and jobs > 10 and commits >= 4 and log_files > 0 and data_files > 0, profile
    assert jvm_mb > 200 and python_mb > 50, profile  # a Spark JVM at work, an interpreter holding pyspark
    assert rows >= 2 * 24951 // 20, profile  # bronze and silver each hold the sampled month at least
    assert profile["2013-02", "record_month"][2] == 1, profile  # one commit: the watermark's row
    assert {run for run, _ in ran[0]} == {"2013-01"} and {run for run, _ in ran[1]} == {"2013-02"}
    assert "SUCCESS" in ran[1]["2013-02", "record_month"] and "EXCLUDED" in ran[0]["2013-01", "train"]
    assert set(processed(home)) == {"2013-01", "2013-02"} and processed(home)["2013-01"] == "local"
    # the schedule went on through December (recorded directly: twelve sampled months would cost an hour)
    later = [f"2013-{month:02d}" for month in range(3, 13)]
    recorded = subprocess.run([sys.executable, "-c", RECORD_MONTHS, str(home), *later], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    done = subprocess.run([str(BIN / "dbxml"), "run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)  # the command as a schedule would run it, notebooks and all
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = summary_rows(done.stdout)
    print(done.stdout)
    assert {run for run, _ in rows} == {"next"}, done.stdout  # no month was chosen
    assert "nothing new: every month that has landed is processed" in done.stdout
    assert "volume none" in rows["next", "lakehouse"] and "state nothing new" in rows["next", "lakehouse"]
    # months the watermark holds, asked for by name: skipped before any task, and said so (the runner's client of
    # the run's server is closed before the server stops: the process would otherwise wait on it at exit)
    done = subprocess.run([str(BIN / "dbxml"), "run", "-p", "month=2013-01..2013-02"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "already processed, skipped: 2013-01, 2013-02 (dbxml run --again runs them)" in done.stdout
    assert "nothing new: 2013-01, 2013-02 already processed" in done.stdout and not summary_rows(done.stdout)

    assert "EXCLUDED" in rows["next", "score"] and "SUCCESS" in rows["next", "record_month"]
    assert len(processed(home)) == 12
