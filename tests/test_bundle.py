"""The Databricks bundle, checked offline: every file validates against the official bundle schema
(vendored in tests/schemas), every notebook a job runs exists, every variable used is declared, the
targets deploy where and as whom they should, grants go to declared groups only, every job installs
the wheel the bundle builds, the classic-cluster job runs the same graph as the serverless one, and
the quality monitor names columns the predictions table really has. Each rule is also shown to catch
a broken copy. (Nothing here deploys: no workspace is reachable from CI; nbs/decisions/0011-bundle.md.)"""
import copy
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_tool

from dbxml.score import predictions_spec
from dbxml.usecase import load_use_case

SCHEMA = ROOT / "tests" / "schemas" / "databricks-bundle.schema.json"
WHEEL = "../dist/*.whl"  # as resources/*.yml name the artifact's output
COMPUTE_KEYS = {"environment_key", "job_cluster_key", "libraries", "new_cluster", "existing_cluster_id"}
VARIABLE = re.compile(r"\$\{var\.([A-Za-z0-9_]+)")


def load(path):
    return yaml.safe_load(Path(path).read_text()) or {}


ROOT_CONFIG = load(ROOT / "databricks.yml")


def bundle_files():
    "databricks.yml and every file its `include` globs name, as the CLI reads them."
    included = [path for pattern in ROOT_CONFIG.get("include", []) for path in sorted(ROOT.glob(pattern))]
    return [ROOT / "databricks.yml", *included]


BUNDLE_FILES = bundle_files()


def validate(*paths):
    return run_tool("check-jsonschema", "--schemafile", str(SCHEMA), *map(str, paths))


def resource_blocks(config):
    "The top-level `resources` of one file and each target's own `resources`."
    yield config.get("resources") or {}
    for target in (config.get("targets") or {}).values():
        yield (target or {}).get("resources") or {}


def jobs_of(config):
    "(key, spec) of every job a file declares, for any target."
    for resources in resource_blocks(config):
        yield from (resources.get("jobs") or {}).items()


def all_jobs():
    return {key: (path, spec) for path in BUNDLE_FILES for key, spec in jobs_of(load(path))}


def missing_notebooks(config, folder):
    "Notebook paths of the jobs in `config` (a file in `folder`) that are not an existing .ipynb."
    missing = []
    for key, job in jobs_of(config):
        for task in job.get("tasks", []):
            if "notebook_task" in task:
                path = task["notebook_task"]["notebook_path"]
                if not (path.endswith(".ipynb") and (folder / path).is_file()):
                    missing.append(f"{key}.{task['task_key']}: {path}")
    return missing


def undeclared_variables(texts, declared):
    "Variables referenced as `${var.NAME}` in any of `texts` but not declared."
    return sorted({name for text in texts for name in VARIABLE.findall(text)} - set(declared))


def grant_problems(config, declared):
    "Grants whose principal is not a declared group variable (no literal names, no unknown variables)."
    problems = []
    for resources in resource_blocks(config):
        for kind, items in resources.items():
            for name, spec in (items or {}).items():
                for grant in (spec or {}).get("grants", []):
                    found = re.fullmatch(r"\$\{var\.([A-Za-z0-9_]+_group)\}", grant["principal"])
                    if not (found and found[1] in declared):
                        problems.append(f"{kind}.{name}: {grant['principal']}")
    return problems


def wheel_problems(job):
    "Tasks of `job` that run a notebook without the bundle's wheel installed."
    environments = {env["environment_key"]: env.get("spec", {}).get("dependencies", [])
                    for env in job.get("environments", [])}
    problems = []
    for task in job.get("tasks", []):
        if "notebook_task" not in task:
            continue
        if "environment_key" in task:
            installed = environments.get(task["environment_key"], [])
        else:
            installed = [library.get("whl") for library in task.get("libraries", [])]
        if WHEEL not in installed:
            problems.append(task["task_key"])
    return problems


def graph(job):
    "What a job does, without how it is computed: parameters, and each task minus its compute."
    tasks = [{key: value for key, value in task.items() if key not in COMPUTE_KEYS} for task in job["tasks"]]
    return {"parameters": job.get("parameters"), "tasks": tasks}


def production_problems(config, name):
    """Why target `name` of `config` would not deploy to production with every job running as the service principal.

    `run_as` belongs on each job, not on the target: with a target run_as the CLI refuses any identity but that
    principal (quality monitors take no run_as), which locks the pull-request check out (ADR 0011)."""
    target = config["targets"][name]
    problems = []
    if target.get("mode") != "production":
        problems.append("mode is not production")
    if "run_as" in target:
        problems.append("run_as is set on the target, so only the run-as principal itself can validate")
    job_overrides = ((target.get("resources") or {}).get("jobs") or {})
    for job in sorted(all_jobs()):
        principal = ((job_overrides.get(job) or {}).get("run_as") or {}).get("service_principal_name", "")
        variable = re.fullmatch(r"\$\{var\.([A-Za-z0-9_]+)\}", principal)
        if not variable:
            problems.append(f"job {job} does not run as a service principal variable")
        elif "default" in config["variables"].get(variable[1], {}):
            problems.append(f"{variable[1]} has a default, so a forgotten principal goes unnoticed")
    return sorted(set(problems))


# --- the schema ---

def test_the_bundle_files_are_found():
    assert BUNDLE_FILES[0].name == "databricks.yml"
    assert len(BUNDLE_FILES) > 1, "include names no resource files"
    assert set(BUNDLE_FILES[1:]) == set((ROOT / "resources").glob("*.yml"))


def test_every_bundle_file_matches_the_official_schema():
    done = validate(*BUNDLE_FILES)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("file, old, new", [
    ("monitoring.yml", "prediction_col:", "predicted_col:"),
    ("catalog.yml", "READ_VOLUME]", "READ_VOLUMES]"),
    ("monthly_job_classic.yml", "runtime_engine: PHOTON", "runtime_engine: PHOTONS"),
])
def test_a_misspelt_setting_is_rejected(tmp_path, file, old, new):
    text = (ROOT / "resources" / file).read_text()
    assert old in text
    (tmp_path / file).write_text(text.replace(old, new))
    done = validate(tmp_path / file)
    assert done.returncode != 0 and new.rstrip(":]").split()[-1] in done.stdout


# --- notebooks and variables ---

def test_every_job_notebook_exists():
    missing = [item for path in BUNDLE_FILES for item in missing_notebooks(load(path), path.parent)]
    assert not missing, missing


def test_a_job_naming_a_missing_notebook_is_caught():
    config = load(ROOT / "resources" / "monthly_job.yml")
    config["resources"]["jobs"]["monthly"]["tasks"][0]["notebook_task"]["notebook_path"] = "../nbs/pipelines/nope.ipynb"
    assert missing_notebooks(config, ROOT / "resources") == ["monthly.lakehouse: ../nbs/pipelines/nope.ipynb"]


def test_every_variable_used_is_declared():
    texts = [path.read_text() for path in BUNDLE_FILES]
    assert undeclared_variables(texts, ROOT_CONFIG["variables"]) == []
    assert undeclared_variables([*texts, "x: ${var.catalogue}"], ROOT_CONFIG["variables"]) == ["catalogue"]


# --- targets ---

def test_every_target_names_its_catalog_as_dbxml_toml_does():
    targets = ROOT_CONFIG["targets"]
    assert set(targets) == {"dev", "staging", "prod"}
    for name, target in targets.items():
        assert target["variables"]["catalog"] == f"dbxml_{name}"


def test_dev_is_the_default_development_target():
    dev = ROOT_CONFIG["targets"]["dev"]
    assert dev["mode"] == "development" and dev["default"] is True
    assert "run_as" not in dev


def test_staging_and_prod_run_as_the_service_principal():
    assert production_problems(ROOT_CONFIG, "prod") == []
    assert production_problems(ROOT_CONFIG, "staging") == []
    broken = copy.deepcopy(ROOT_CONFIG)
    broken["targets"]["prod"]["resources"]["jobs"] = {"monthly": broken["targets"]["prod"]["resources"]["jobs"]["monthly"]}
    broken["targets"]["prod"]["run_as"] = {"service_principal_name": "${var.service_principal_application_id}"}
    broken["targets"]["staging"]["mode"] = "development"
    broken["variables"]["service_principal_application_id"]["default"] = "0000"
    assert production_problems(broken, "prod") == [
        "job monthly_classic does not run as a service principal variable",
        "run_as is set on the target, so only the run-as principal itself can validate",
        "service_principal_application_id has a default, so a forgotten principal goes unnoticed"]
    assert production_problems(broken, "staging") == [
        "mode is not production", "service_principal_application_id has a default, so a forgotten principal goes unnoticed"]


def test_only_prod_runs_on_schedule():
    status = {name: target["variables"]["schedule_pause_status"] for name, target in ROOT_CONFIG["targets"].items()}
    assert status == {"dev": "PAUSED", "staging": "PAUSED", "prod": "UNPAUSED"}
    jobs = all_jobs()
    assert jobs["monthly"][1]["schedule"]["pause_status"] == "${var.schedule_pause_status}"
    assert jobs["monthly_classic"][1]["schedule"]["pause_status"] == "PAUSED"


def test_no_workspace_host_is_written_down():
    for path in BUNDLE_FILES:
        assert "host:" not in path.read_text(), path


# --- grants ---

def test_grants_go_to_declared_groups_only():
    declared = ROOT_CONFIG["variables"]
    configs = [load(path) for path in BUNDLE_FILES]
    assert [problem for config in configs for problem in grant_problems(config, declared)] == []
    granted = sum(len(spec.get("grants", [])) for config in configs for resources in resource_blocks(config)
                  for items in resources.values() for spec in (items or {}).values())
    assert granted > 0
    broken = load(ROOT / "resources" / "catalog.yml")
    broken["targets"]["prod"]["resources"] = copy.deepcopy(broken["targets"]["prod"]["resources"])
    broken["targets"]["prod"]["resources"]["volumes"]["raw"]["grants"][0]["principal"] = "account users"
    assert grant_problems(broken, declared) == ["volumes.raw: account users"]


def test_catalogs_and_schemas_are_left_to_terraform():
    "Two owners of one schema would fight: infra/ creates catalogs and schemas, the bundle what is inside."
    declared = {kind for config in map(load, BUNDLE_FILES) for resources in resource_blocks(config) for kind in resources}
    assert declared and not declared & {"catalogs", "schemas"}, declared
    volume = load(ROOT / "resources" / "catalog.yml")["targets"]["prod"]["resources"]["volumes"]["raw"]
    assert volume["schema_name"] == "${var.schema}"
    for grant in volume["grants"]:  # people never write anything but raw files
        assert set(grant["privileges"]) <= {"READ_VOLUME", "WRITE_VOLUME"}, grant


def test_the_uc_objects_match_what_the_code_uses():
    model = load(ROOT / "resources" / "model.yml")["targets"]["prod"]["resources"]
    catalog = load(ROOT / "resources" / "catalog.yml")["targets"]["prod"]["resources"]
    assert model["registered_models"]["flight_delay"]["name"] == load_use_case().model
    assert catalog["volumes"]["raw"]["name"] == "raw"  # dbxml.toml: raw_root = /Volumes/<catalog>/flights/raw


# --- the wheel ---

def test_the_wheel_is_built_by_the_bundle_and_installed_by_every_job():
    artifact = ROOT_CONFIG["artifacts"]["dbxml"]
    assert artifact["type"] == "whl" and (ROOT / artifact["path"] / "setup.py").is_file()
    assert "dist" in artifact["build"]
    jobs = all_jobs()
    assert {"monthly", "monthly_classic"} <= set(jobs)
    for key, (path, job) in jobs.items():
        assert (path.parent / WHEEL).parent.resolve() == (ROOT / artifact["path"] / "dist").resolve(), key
        assert wheel_problems(job) == [], key


def test_a_task_without_the_wheel_is_caught():
    job = copy.deepcopy(all_jobs()["monthly_classic"][1])
    del next(task for task in job["tasks"] if task["task_key"] == "score")["libraries"]
    assert wheel_problems(job) == ["score"]
    job = copy.deepcopy(all_jobs()["monthly"][1])
    job["environments"][0]["spec"]["dependencies"] = ["dbxml"]
    assert "lakehouse" in wheel_problems(job)


# --- the classic variant ---

def test_the_classic_job_runs_the_same_graph_on_a_job_cluster():
    jobs = all_jobs()
    serverless, classic = jobs["monthly"][1], jobs["monthly_classic"][1]
    assert graph(classic) == graph(serverless)
    assert "job_clusters" not in serverless and "environments" not in classic
    cluster = classic["job_clusters"][0]["new_cluster"]
    assert cluster["runtime_engine"] == "PHOTON" and cluster["data_security_mode"] == "SINGLE_USER"
    assert cluster["autoscale"]["min_workers"] < cluster["autoscale"]["max_workers"]
    keys = {task.get("job_cluster_key") for task in classic["tasks"] if "notebook_task" in task}
    assert keys == {classic["job_clusters"][0]["job_cluster_key"]}


def test_a_classic_graph_that_drifts_is_caught():
    jobs = all_jobs()
    serverless, classic = jobs["monthly"][1], copy.deepcopy(jobs["monthly_classic"][1])
    classic["tasks"][-1]["notebook_task"]["base_parameters"]["why"] = "manual"
    assert graph(classic) != graph(serverless)
    classic = copy.deepcopy(jobs["monthly_classic"][1])
    next(task for task in classic["tasks"] if task["task_key"] == "retrain_needed")["condition_task"]["right"] = "false"
    assert graph(classic) != graph(serverless)


# --- the quality monitor ---

def test_the_quality_monitor_watches_the_predictions_table_by_its_real_columns():
    config = load(ROOT / "resources" / "monitoring.yml")
    monitors = [monitor for resources in resource_blocks(config)
                for monitor in (resources.get("quality_monitors") or {}).values()]
    assert monitors
    for settings in monitors:
        assert settings["table_name"].endswith(f".{predictions_spec(load_use_case()).table}")
        columns = set(predictions_spec(load_use_case()).column_names)
        used = {value for key, value in settings["inference_log"].items() if key.endswith("_col")}
        assert used and used <= columns, used - columns
        assert set(settings["slicing_exprs"]) <= columns
