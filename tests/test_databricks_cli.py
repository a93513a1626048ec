"""The bundle, proven by the real Databricks CLI against the project's fake workspace.

The CLI is github.com/databricks/cli built from source (../shared/tools/databricks-cli/build.sh, cached);
the workspace is tests/support/fake_workspace.py, which keeps state, records every request and checks each
against the Databricks SDK's types. Here: `bundle validate --strict`, `bundle summary`, and with the direct
engine `bundle plan` and `bundle deploy`, for dev, staging and prod, each as every identity that really runs
it; what a deploy creates, read from the recorded requests; a second plan after a deploy that changes nothing;
broken bundles refused by the CLI itself; and `bundle run` and the papermill engine held to the same fake.
No real workspace was involved (none is reachable): nbs/decisions/0011-bundle.md says what that leaves open."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import papermill
import pytest
import yaml
from conftest import ROOT
from support.fake_workspace import BI_WAREHOUSE, TOKEN, USER, FakeWorkspace

import dbxml
from dbxml.config import load_target
from dbxml.hygiene import copy_repository

DEVELOPER = USER  # a person: dev is deployed by each developer, as themselves
CI_PRINCIPAL = "9f3c2a4e-1b7d-4c55-8e21-0c1c1c1c1c1c"  # dbxml-ci: the pull-request check signs in as it
DEPLOY_PRINCIPAL = "5d1e7b20-6a3f-4d8e-9b42-0de910de910d"  # dbxml-deploy-<env>: CD deploys and the jobs run as it
RUNS_AS = [("dev", DEVELOPER), ("staging", CI_PRINCIPAL), ("prod", CI_PRINCIPAL), ("staging", DEPLOY_PRINCIPAL),
           ("prod", DEPLOY_PRINCIPAL)]  # (target, identity) of every validate the workflows run
BUILD_SCRIPT = ROOT.parent / "shared" / "tools" / "databricks-cli" / "build.sh"
WHEEL = f"{dbxml.__name__}-{dbxml.__version__}-py3-none-any.whl"  # the package's wheel, as the bundle builds it
SCHEMA = load_target("staging", ROOT / "dbxml.toml", environ={}).schema  # the bundle's and dbxml.toml's schema
MONTHLY_TASKS = ["lakehouse", "month_complete", "score", "monitor", "retrain_needed", "train", "promote", "record_month"]


@pytest.fixture(scope="session")
def cli():
    "The path of the real Databricks CLI: DBXML_DATABRICKS_CLI, else built (once, cached) by the shared script."
    if os.environ.get("DBXML_DATABRICKS_CLI"):
        return os.environ["DBXML_DATABRICKS_CLI"]
    if not BUILD_SCRIPT.exists():
        pytest.skip(f"no {BUILD_SCRIPT}: set DBXML_DATABRICKS_CLI to a Databricks CLI binary to run these tests")
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain on PATH: the Databricks CLI cannot be built from source here")
    built = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=3600)
    assert built.returncode == 0, built.stderr[-3000:]
    return built.stdout.strip().splitlines()[-1]


def databricks(cli, workspace, *args, cwd=ROOT, timeout=600):
    "Run the CLI signed in to `workspace` as its user (a token), with the direct engine and no telemetry."
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith(("DATABRICKS_", "BUNDLE_VAR_", "ARM_", "AZURE_"))}
    environ |= {"DATABRICKS_HOST": workspace.url, "DATABRICKS_TOKEN": TOKEN,
                "DATABRICKS_CONFIG_FILE": str(Path(cwd) / ".no-databrickscfg"),
                "DATABRICKS_CLI_DISABLE_TELEMETRY": "true", "DATABRICKS_BUNDLE_ENGINE": "direct",
                "BUNDLE_VAR_service_principal_application_id": DEPLOY_PRINCIPAL,
                # the bundle's artifact build runs `python -m pip wheel`: the project's python, as in CI's venv
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"}
    return subprocess.run([cli, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout)


def said(done) -> str:
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def bundle_copy(tmp_path_factory):
    "This working tree as a git repository of its own, so that deploys build and upload there."
    return copy_repository(ROOT, tmp_path_factory.mktemp("bundle") / "repo")


# --- validate and summary, as every identity ---

@pytest.mark.parametrize("target,identity", RUNS_AS)
def test_the_bundle_validates_strictly_as_every_identity_that_runs_it(cli, target, identity):
    with FakeWorkspace(user=identity) as workspace:
        done = databricks(cli, workspace, "bundle", "validate", "--strict", "-t", target)
    print(said(done))
    assert done.returncode == 0 and "Validation OK!" in done.stdout, said(done)
    assert workspace.problems == []


def test_a_target_run_as_would_lock_the_ci_principal_out_of_staging_and_prod(cli, tmp_path):
    "The defect the CLI found: a target-level run_as with a quality monitor; the per-job run_as is the fix."
    broken = copy_repository(ROOT, tmp_path / "repo")
    config = yaml.safe_load((broken / "databricks.yml").read_text())
    for name in ("staging", "prod"):
        config["targets"][name].pop("resources")
        config["targets"][name]["run_as"] = {"service_principal_name": "${var.service_principal_application_id}"}
    (broken / "databricks.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    with FakeWorkspace(user=CI_PRINCIPAL) as workspace:
        done = databricks(cli, workspace, "bundle", "validate", "-t", "staging", cwd=broken)
    assert done.returncode != 0
    assert "quality_monitors do not support a setting a run_as user that is different from the owner" in done.stderr


@pytest.fixture(scope="module")
def summaries(cli):
    "`bundle summary -o json` of each target, as the identity that validates it in the pull-request check."
    found = {}
    for target, identity in (("dev", DEVELOPER), ("staging", CI_PRINCIPAL), ("prod", CI_PRINCIPAL)):
        with FakeWorkspace(user=identity) as workspace:
            done = databricks(cli, workspace, "bundle", "summary", "-t", target, "-o", "json")
        assert done.returncode == 0, said(done)
        found[target] = json.loads(done.stdout)
    return found


def test_staging_and_prod_jobs_run_as_the_deploy_principal_and_only_prod_is_scheduled(summaries):
    for target, pause in (("dev", "PAUSED"), ("staging", "PAUSED"), ("prod", "UNPAUSED")):
        jobs = summaries[target]["resources"]["jobs"]
        assert jobs["monthly"]["schedule"]["pause_status"] == pause, target
        assert jobs["monthly_classic"]["schedule"]["pause_status"] == "PAUSED", target  # never the scheduled one
        for job in jobs.values():
            if target == "dev":
                assert "run_as" not in job or job["run_as"].get("user_name") == DEVELOPER
            else:
                assert job["run_as"] == {"service_principal_name": DEPLOY_PRINCIPAL}, (target, job["name"])
    assert summaries["dev"]["resources"]["jobs"]["monthly"]["name"].startswith("[dev someone] ")
    assert "quality_monitors" not in summaries["dev"]["resources"]  # one monitor per table: staging and prod only


# --- a broken bundle is refused by the CLI itself ---

def break_notebook(config_dir):
    path = config_dir / "resources" / "monthly_job.yml"
    path.write_text(path.read_text().replace("../nbs/pipelines/score.ipynb", "../nbs/pipelines/scores.ipynb"))


def break_key(config_dir):
    path = config_dir / "resources" / "monthly_job.yml"
    path.write_text(path.read_text().replace("depends_on:\n            - task_key: month_complete",
                                             "depend_on:\n            - task_key: month_complete", 1))


def break_variable(config_dir):
    path = config_dir / "resources" / "monthly_job.yml"
    path.write_text(path.read_text().replace("name: dbxml-monthly-${bundle.target}", "name: dbxml-monthly-${var.env}"))


BROKEN = {"a task names a missing notebook": (break_notebook, "notebook nbs/pipelines/scores.ipynb not found"),
          "a misspelt key": (break_key, "unknown field: depend_on"),
          "an undefined variable": (break_variable, "reference does not exist: ${var.env}")}


@pytest.mark.parametrize("case", list(BROKEN))
def test_the_cli_refuses_a_broken_bundle(cli, tmp_path, case):
    breaker, message = BROKEN[case]
    broken = copy_repository(ROOT, tmp_path / "repo")
    breaker(broken)
    with FakeWorkspace(user=DEVELOPER) as workspace:
        done = databricks(cli, workspace, "bundle", "validate", "--strict", "-t", "dev", cwd=broken)
    assert done.returncode != 0, said(done)
    assert message in said(done)


# --- plan and deploy, as the identity that deploys ---

@pytest.fixture(scope="module")
def deploys(cli, bundle_copy):
    "Plan, deploy and plan again each target as its deployer, each in a fake workspace of its own (kept open)."
    found = {}
    with FakeWorkspace(user=DEVELOPER) as dev, FakeWorkspace(user=DEPLOY_PRINCIPAL) as staging, \
            FakeWorkspace(user=DEPLOY_PRINCIPAL) as prod:
        for target, workspace in (("dev", dev), ("staging", staging), ("prod", prod)):
            first_plan = databricks(cli, workspace, "bundle", "plan", "-t", target, cwd=bundle_copy)
            deployed = databricks(cli, workspace, "bundle", "deploy", "-t", target, cwd=bundle_copy)
            assert deployed.returncode == 0, said(deployed)
            second_plan = databricks(cli, workspace, "bundle", "plan", "-t", target, cwd=bundle_copy)
            found[target] = {"workspace": workspace, "plans": (first_plan, second_plan), "deploy": deployed}
        yield found


def created(workspace, path):
    "The bodies of the create requests to `path`."
    return workspace.bodies(path)


def job_named(workspace, name):
    [job] = [body for body in workspace.bodies("/api/2.2/jobs/create") if body["name"] == name]
    return job


@pytest.mark.slow
def test_a_plan_lists_what_a_deploy_creates_and_a_second_plan_changes_nothing(deploys):
    for target, found in deploys.items():
        first, second = found["plans"]
        assert first.returncode == 0 and second.returncode == 0, said(first) + said(second)
        print(f"--- {target}: first plan\n{first.stdout}--- {target}: after the deploy\n{second.stdout}")
        count = len([line for line in first.stdout.splitlines() if line.startswith("create ")])
        assert f"Plan: {count} to add, 0 to change, 0 to delete, 0 unchanged" in first.stdout
        assert f"Plan: 0 to add, 0 to change, 0 to delete, {count} unchanged" in second.stdout
        assert found["workspace"].problems == [], found["workspace"].problems


@pytest.mark.slow
def test_a_staging_deploy_creates_the_monthly_job_as_written(deploys):
    workspace = deploys["staging"]["workspace"]
    print("\n".join(f"{method} {path}" for method, path, _ in workspace.requests
                    if method != "GET" and "/workspace" not in path))
    root = f"/Workspace/Users/{DEPLOY_PRINCIPAL}/.bundle/dbxml/staging"
    job = job_named(workspace, "dbxml-monthly-staging")
    tasks = {task["task_key"]: task for task in job["tasks"]}
    assert [task["task_key"] for task in job["tasks"]] == sorted(MONTHLY_TASKS)  # the API sorts them by key
    assert set(tasks) == set(MONTHLY_TASKS)
    assert job["run_as"] == {"service_principal_name": DEPLOY_PRINCIPAL}
    assert job["schedule"] == {"quartz_cron_expression": "0 0 4 1 * ?", "timezone_id": "UTC", "pause_status": "PAUSED"}
    assert {item["name"]: item["default"] for item in job["parameters"]} == {"month": "next", "window": "3"}
    assert job["max_concurrent_runs"] == 1 and job["queue"] == {"enabled": True}
    [environment] = job["environments"]
    assert environment["spec"]["dependencies"] == [f"{root}/artifacts/.internal/{WHEEL}"]
    uploaded = set(workspace.files)
    assert f"{root.removeprefix('/Workspace')}/artifacts/.internal/{WHEEL}" in uploaded
    for key, task in tasks.items():
        if "notebook_task" in task:
            notebook = task["notebook_task"]["notebook_path"]
            assert notebook == f"{root}/files/nbs/pipelines/{key}", key
            assert f"{notebook.removeprefix('/Workspace')}.ipynb" in uploaded, f"{key}'s notebook was not uploaded"
            assert task["environment_key"] == environment["environment_key"]
            assert task["notebook_task"]["base_parameters"]["target_name"] == "staging"
    assert tasks["lakehouse"]["notebook_task"]["base_parameters"]["month"] == "{{job.parameters.month}}"
    assert tasks["score"]["notebook_task"]["base_parameters"]["month"] == "{{tasks.lakehouse.values.month}}"
    assert tasks["month_complete"]["condition_task"] == {"left": "{{tasks.lakehouse.values.volume}}",
                                                         "op": "EQUAL_TO", "right": "ok"}
    assert tasks["score"]["depends_on"] == [{"task_key": "month_complete", "outcome": "true"}]
    assert tasks["train"]["depends_on"] == [{"task_key": "retrain_needed", "outcome": "true"}]
    assert tasks["record_month"]["run_if"] == "NONE_FAILED"
    assert {dep["task_key"] for dep in tasks["record_month"]["depends_on"]} == \
        {"lakehouse", "score", "monitor", "train", "promote"}
    job_id = next(job_id for job_id, settings in workspace.jobs.items() if settings["name"] == job["name"])
    acl = {(entry.get("group_name") or entry.get("service_principal_name") or entry.get("user_name"),
            entry["permission_level"]) for entry in workspace.permissions[f"jobs/{job_id}"]}
    assert {("dbxml-data-engineers", "CAN_MANAGE_RUN"), ("dbxml-data-scientists", "CAN_VIEW")} <= acl
    classic = job_named(workspace, "dbxml-monthly-classic-staging")
    assert [task["task_key"] for task in classic["tasks"]] == sorted(MONTHLY_TASKS)
    assert classic["run_as"] == {"service_principal_name": DEPLOY_PRINCIPAL}


@pytest.mark.slow
def test_a_staging_deploy_creates_the_catalog_objects_experiment_and_monitor_with_their_grants(deploys):
    workspace = deploys["staging"]["workspace"]
    [volume] = created(workspace, "/api/2.1/unity-catalog/volumes")
    assert (volume["catalog_name"], volume["schema_name"], volume["name"], volume["volume_type"]) == \
        ("dbxml_staging", SCHEMA, "raw", "MANAGED")
    assert workspace.grants["volume/dbxml_staging.flights.raw"] == [
        {"principal": "dbxml-data-engineers", "privileges": ["READ_VOLUME", "WRITE_VOLUME"]},
        {"principal": "dbxml-data-scientists", "privileges": ["READ_VOLUME"]}]
    [model] = created(workspace, "/api/2.1/unity-catalog/models")
    assert (model["catalog_name"], model["schema_name"], model["name"]) == ("dbxml_staging", SCHEMA, "flight_delay")
    [model_grants] = [grants for key, grants in workspace.grants.items() if key.endswith("dbxml_staging.flights.flight_delay")]
    assert model_grants == [{"principal": "dbxml-data-scientists", "privileges": ["EXECUTE"]},
                            {"principal": "dbxml-data-engineers", "privileges": ["EXECUTE"]}]
    [experiment] = created(workspace, "/api/2.0/mlflow/experiments/create")
    assert experiment["name"] == "/Shared/dbxml/flight_delay"
    [experiment_id] = workspace.experiments
    readers = {(entry.get("group_name"), entry["permission_level"])
               for entry in workspace.permissions[f"experiments/{experiment_id}"]}
    assert {("dbxml-data-scientists", "CAN_READ"), ("dbxml-data-engineers", "CAN_READ")} <= readers
    [monitor] = workspace.monitors.values()
    assert monitor["table_name"] == "dbxml_staging.flights.flight_delay_predictions"
    assert monitor["output_schema_name"] == "dbxml_staging.flights"
    assert monitor["inference_log"]["prediction_col"] == "predicted_delayed"
    assert monitor["inference_log"]["problem_type"] == "PROBLEM_TYPE_CLASSIFICATION"
    # every group a grant or permission names is one of the bundle's declared groups
    groups = {entry["principal"] for grants in workspace.grants.values() for entry in grants}
    assert groups <= {"dbxml-data-engineers", "dbxml-data-scientists", "dbxml-analysts"}


@pytest.mark.slow
def test_a_deploy_creates_and_publishes_the_dashboard_on_the_platform_warehouse(deploys):
    "The dashboard as dashboards/ontime.lvdash.json says, over the target's own schema, readable by the BI groups."
    for target, catalog in (("staging", "dbxml_staging"), ("dev", "dbxml_dev")):
        workspace = deploys[target]["workspace"]
        [(dashboard_id, draft)] = workspace.dashboards.items()
        prefix = "[dev someone] " if target == "dev" else ""  # development mode prefixes what a developer deploys
        assert draft["display_name"] == f"{prefix}dbxml on-time performance ({target})"
        assert json.loads(draft["serialized_dashboard"]) == json.loads((ROOT / "dashboards" / "ontime.lvdash.json").read_text())
        assert (draft["warehouse_id"], draft["dataset_catalog"], draft["dataset_schema"]) == \
            (BI_WAREHOUSE.id, catalog, SCHEMA)
        assert workspace.published[dashboard_id].get("embed_credentials", False) is False  # viewers use their own rights
        acl = {(entry.get("group_name"), entry["permission_level"]) for entry in workspace.permissions[f"dashboards/{dashboard_id}"]}
        assert {("dbxml-analysts", "CAN_RUN"), ("dbxml-data-engineers", "CAN_MANAGE")} <= acl


@pytest.mark.slow
def test_prod_runs_on_schedule_and_dev_is_a_private_paused_copy(deploys):
    prod = job_named(deploys["prod"]["workspace"], "dbxml-monthly-prod")
    assert prod["schedule"]["pause_status"] == "UNPAUSED" and prod["run_as"]["service_principal_name"] == DEPLOY_PRINCIPAL
    assert job_named(deploys["prod"]["workspace"], "dbxml-monthly-classic-prod")["schedule"]["pause_status"] == "PAUSED"
    dev = deploys["dev"]["workspace"]
    [monthly] = [body for body in dev.bodies("/api/2.2/jobs/create") if body["name"].endswith("dbxml-monthly-dev")]
    assert monthly["name"].startswith("[dev someone] ") and monthly["schedule"]["pause_status"] == "PAUSED"
    assert "run_as" not in monthly or monthly["run_as"] == {"user_name": DEVELOPER}
    # dev creates no shared objects: Terraform makes dev's volume, and staging and prod own the rest
    for path in ("/api/2.1/unity-catalog/volumes", "/api/2.1/unity-catalog/models", "/api/2.0/mlflow/experiments/create"):
        assert dev.bodies(path) == [], path
    assert dev.monitors == {}


# --- one recorded contract for both clients ---

@pytest.mark.slow
def test_bundle_run_and_the_papermill_engine_meet_the_same_fake_workspace(cli, deploys, bundle_copy, tmp_path,
                                                                        monkeypatch):
    workspace = deploys["staging"]["workspace"]
    done = databricks(cli, workspace, "bundle", "run", "monthly", "-t", "staging", "--params", "month=2013-01",
                      cwd=bundle_copy)
    assert done.returncode == 0 and "TERMINATED SUCCESS" in said(done), said(done)
    [run_now] = workspace.bodies("/api/2.2/jobs/run-now")
    monthly = next(job_id for job_id, settings in workspace.jobs.items() if settings["name"] == "dbxml-monthly-staging")
    assert run_now == {"job_id": monthly, "job_parameters": {"month": "2013-01"}}
    # the papermill engine, signed in to the same workspace, submits a one-time run that passes the same checks
    for name in [name for name in os.environ if name.startswith(("DATABRICKS_", "ARM_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "missing.databrickscfg"))
    notebook = ROOT / "nbs" / "pipelines" / "record_month.ipynb"
    papermill.execute_notebook(str(notebook), str(tmp_path / "out.ipynb"), parameters={"month": "2013-01"},
                               engine_name="databricks", kernel_name="python3", language="python",
                               progress_bar=False)
    [submitted] = workspace.bodies("/api/2.2/jobs/runs/submit")
    assert submitted["tasks"][0]["notebook_task"]["base_parameters"] == {"month": "2013-01"}
    assert workspace.problems == []
    assert set(workspace.unknown) <= {"GET /.well-known/databricks-config"}
