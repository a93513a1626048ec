"""Every command in the guides (nbs/guides/*.md) is accounted for, and run here where it can run here.

A guide's commands are its fenced code blocks: each line of a ```bash block is one command, and each ```python
or ```sql block is one snippet, named by its first line (a comment). ```text blocks show output and are not
commands; no other kind of block is allowed. Every command must be in exactly one of:

- RUN_HERE: run by a test of this file (named in the mapping), in a copy of the repository or a scratch
  folder, asserting on its output. Python snippets run as written; SQL snippets run with delta-rs' SQL
  engine on a local Delta table of the same schema (the three-part Unity Catalog name shortened to the
  table's own name).
- COVERED_BY: too slow to run twice (a Spark job, a server); mapped to the existing test that runs it.
- NOT_HERE: needs a real Databricks workspace, Azure, GitHub or Terraform's provider registry; with why.

A command in a guide that is in none of them fails, and so does a mapping entry no guide uses.
"""
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from conftest import BIN, ROOT

GUIDES = [ROOT / "nbs" / "guides" / f"{name}.md"
          for name in ("data-scientist", "ml-engineer", "platform-admin", "bring-your-own-data")]
FENCE = re.compile(r"^([ \t]*)```([\w-]*)[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)
COMMAND_LANGUAGES, OUTPUT_LANGUAGES = {"bash", "python", "sql"}, {"text"}

# `dbxml check --fix` is tested where it is built; the lead reconciles this name with that test.
CHECK_FIX_TEST = ("tests/test_repository_rules.py", "test_check_fix_keeps_an_edit_made_on_databricks_and_exports_it")

RUN_HERE = {
    ".venv/bin/dbxml doctor": "test_doctor_passes_on_a_fresh_home",
    ".venv/bin/dbxml info --target dev": "test_info_shows_what_dev_and_prod_resolve_to",
    ".venv/bin/dbxml info --target prod": "test_info_shows_what_dev_and_prod_resolve_to",
    "make -n run": "test_make_run_is_doctor_then_the_year",
    ".venv/bin/jupyter kernelspec list": "test_the_notebooks_kernel_is_the_one_in_the_venv",
    ".venv/bin/dbxml check": "test_check_reports_a_notebook_saved_by_databricks_as_the_guide_shows",
    "make check": "test_make_check_passes_on_a_copy_of_the_repository",
    "# Find the training runs and load the champion": "test_mlflow_snippets_and_the_rollback_on_a_local_registry",
    "# The champion's history": "test_mlflow_snippets_and_the_rollback_on_a_local_registry",
    "# Roll the champion back to the version it replaced": "test_mlflow_snippets_and_the_rollback_on_a_local_registry",
    "# The promotion policy": "test_the_policies_print_as_the_guide_says",
    "# The retrain rule": "test_the_policies_print_as_the_guide_says",
    "# Which months are processed": "test_the_watermark_and_monitoring_reads_on_local_delta_tables",
    "-- Which months are processed in prod": "test_the_watermark_and_monitoring_reads_on_local_delta_tables",
    "# The retrain signal of every month": "test_the_watermark_and_monitoring_reads_on_local_delta_tables",
    "-- The retrain signal of every month in prod": "test_the_watermark_and_monitoring_reads_on_local_delta_tables",
    "cp infra/backend.hcl.example infra/backend.hcl": "test_the_terraform_settings_copies_stay_out_of_git",
    "cp infra/terraform.tfvars.example infra/terraform.tfvars": "test_the_terraform_settings_copies_stay_out_of_git",
    "cp infra/github/terraform.tfvars.example infra/github/terraform.tfvars":
        "test_the_terraform_settings_copies_stay_out_of_git",
    "terraform fmt -check -recursive infra": "test_terraform_fmt_is_clean_as_the_guide_runs_it",
    "# Check that dbxml finds the use case and accepts it": "test_the_second_use_case_loads_as_the_guide_shows",
}

MONTHLY_JOB_TEST = ("tests/test_jobs.py",
                    "test_the_monthly_job_runs_every_task_type_on_one_jvm_with_workers_on_the_projects_python")
COVERED_BY = {  # command: (test file, test function, what the test runs)
    "make run": (*MONTHLY_JOB_TEST, "the same job (`make -n run` above pins what make runs), on four sampled months"),
    ".venv/bin/dbxml run -p month=2013-01..2013-04": (*MONTHLY_JOB_TEST, "this command, on a sample of the flights"),
    ".venv/bin/dbxml run monthly -p month=2013-01..2013-03": (*MONTHLY_JOB_TEST,
                                                              "the same backfill over 2013-01..2013-04"),
    ".venv/bin/dbxml run": ("tests/test_jobs.py",
                            "test_a_run_without_a_month_processes_the_next_landed_month_and_says_when_there_is_nothing_new",
                            "this command once every landed month is processed, after two scheduled runs "
                            "in-process (`--in-process`: the same graph and tasks)"),
    ".venv/bin/dbxml run monthly --again -p month=2013-03": (
        "tests/test_jobs.py",
        "test_a_run_without_a_month_processes_the_next_landed_month_and_says_when_there_is_nothing_new",
        "processed months asked for by name, skipped and said so; `--again` reaches `run_job(again=True)` "
        "(`nbs/05_cli.ipynb`), whose rerun of March is `nbs/24_tasks.ipynb`'s example"),
    ".venv/bin/papermill nbs/pipelines/lakehouse.ipynb /tmp/lakehouse-2013-03.ipynb -p month 2013-03": (
        "tests/test_jobs.py", "test_papermill_runs_the_lakehouse_task_notebook_by_hand_with_a_month_parameter",
        "the same papermill call for March"),
    '.venv/bin/papermill nbs/pipelines/promote.ipynb /tmp/promote.ipynb -p month 2013-04 -p model_version 3 '
    '-p why "manual review"': (*MONTHLY_JOB_TEST, "the runner executes this notebook with papermill and these "
                                                  "parameters, for February and April"),
    ".venv/bin/dbxml check --fix": (*CHECK_FIX_TEST, "a notebook saved by Databricks, fixed"),
    ".venv/bin/dbxml ui": ("tests/test_jobs.py", "test_the_mlflow_ui_shows_the_runs_the_figures_and_the_champion",
                           "the UI on a free port over the runs and registry of four sampled months"),
    "DBXML_USE_CASE=rain:RAIN DBXML_SCHEMA=rain PYTHONPATH=tests/support .venv/bin/dbxml run -p month=2013-01..2013-03": (
        "tests/test_use_case.py", "test_the_rain_use_case_runs_the_monthly_job_end_to_end",
        "this command, with two bad records added to February's file"),
    ".venv/bin/pytest tests/test_infra.py tests/test_governance.py tests/test_bundle.py": (
        "tests/test_infra.py", "test_names_line_up", "these suites are part of `make test`"),
}

WORKSPACE = "needs a Databricks workspace and its credentials"
FAKE_CLI = "; the real CLI's requests are checked against a fake workspace in tests/test_databricks_cli.py"
NOT_HERE = {
    "databricks bundle validate -t dev": WORKSPACE + FAKE_CLI,
    "databricks bundle deploy -t dev": WORKSPACE + FAKE_CLI,
    "databricks bundle run monthly -t dev --params month=2013-01": WORKSPACE + FAKE_CLI,
    "databricks bundle validate --strict -t staging": WORKSPACE + FAKE_CLI,
    "databricks bundle deploy -t staging": WORKSPACE + FAKE_CLI,
    "databricks bundle run monthly -t staging --params month=2013-01": WORKSPACE + FAKE_CLI,
    "databricks bundle deploy -t prod": WORKSPACE + FAKE_CLI,
    ".venv/bin/papermill nbs/pipelines/score.ipynb /tmp/score-2013-05.ipynb -p month 2013-05 --engine databricks":
        WORKSPACE + "; the engine's requests are checked against a fake workspace in tests/test_databricks.py",
    "-- What the prod deploy principal did in the last 7 days": "system.access.audit exists only in a workspace",
    "git push -u origin HEAD": "needs the repository's GitHub remote",
    "gh pr create --fill": "needs GitHub",
    "git tag v0.1.0": "a release tag; only meaningful pushed to GitHub, where it starts deploy-prod.yml",
    "git push origin v0.1.0": "needs GitHub; starts deploy-prod.yml, which deploys to prod",
    "gh run list --workflow deploy-prod.yml": "needs GitHub and workflow runs",
    "az login": "needs an Azure tenant",
    "terraform -chdir=infra init -backend-config=backend.hcl": "needs the provider registry and the Azure state storage",
    "terraform -chdir=infra apply": "needs Azure, a Databricks account and the provider registry",
    "terraform -chdir=infra output bundle_targets": "needs the applied state in Azure",
    "export GITHUB_TOKEN=$(gh auth token)": "needs a GitHub sign-in (a repository admin's)",
    'terraform -chdir=infra/github init -backend-config=../backend.hcl -backend-config="key=dbxml-github.tfstate"':
        "needs the provider registry and the Azure state storage",
    "terraform -chdir=infra/github apply": "needs GitHub admin rights and the platform's state in Azure",
    'az ad app federated-credential list --id "$AZURE_PROD_CLIENT_ID"': "needs the Entra ID tenant",
    'az ad app federated-credential delete --id "$AZURE_PROD_CLIENT_ID" --federated-credential-id "$CREDENTIAL_ID"':
        "needs the Entra ID tenant; revokes prod's deploy identity",
}


# ---- reading the guides ----

def code_blocks(path: Path) -> list[tuple[str, str]]:
    "The fenced blocks of a guide as (language, dedented text)."
    return [(language, textwrap.dedent(body)) for _, language, body in FENCE.findall(path.read_text())]


def commands_of(path: Path) -> dict[str, str]:
    "The guide's commands: a bash line -> itself; a python or sql block's first line (its name) -> the block."
    found = {}
    for language, text in code_blocks(path):
        if language == "bash":
            text = text.replace("\\\n", " ")
            found |= {line.strip(): line.strip() for line in text.splitlines()
                      if line.strip() and not line.strip().startswith("#")}
        elif language in ("python", "sql"):
            found[text.splitlines()[0].strip()] = text
    return found


def guide_commands() -> dict[str, str]:
    "Every command of every guide (a command used by two guides must be the same text in both)."
    found = {}
    for path in GUIDES:
        for name, text in commands_of(path).items():
            assert found.setdefault(name, text) == text, f"{name!r} differs between guides"
    return found


def snippet(name: str) -> str:
    "The text of the guides' Python or SQL block named `name`, checked to be a RUN_HERE entry of the calling test."
    caller = inspect.stack()[1].function
    assert RUN_HERE.get(name) == caller, f"{name!r} is not RUN_HERE for {caller}"
    return guide_commands()[name]


def run_command(command: str, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    "Run a bash line of a guide, as written, in `cwd`: `.venv/bin/X` is this environment's X, make uses this venv."
    caller = inspect.stack()[1].function
    assert RUN_HERE.get(command) == caller, f"{command!r} is not RUN_HERE for {caller}"
    assert command in guide_commands(), f"{command!r} is in no guide"
    args = shlex.split(command)
    if args[0].startswith(".venv/bin/"):
        args[0] = str(BIN / args[0].removeprefix(".venv/bin/"))
    elif args[0] == "make":  # a copy of the repository has no .venv: point make at this one, installed
        args = ["make", "--no-print-directory", f"VENV={sys.prefix}", "-o", f"{sys.prefix}/.installed", *args[1:]]
        env = {key: value for key, value in (env or os.environ).items() if key not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


SEPARATOR = "=== next snippet ==="
# The process ends with os._exit once every snippet has run and printed: delta-rs's native threads can abort
# the interpreter's teardown ("terminate called without an active exception", delta-io/delta-rs#2184), after
# the work is done and the output is out. What the test checks is the output, and any snippet's error.
RUN_SNIPPETS = f"""
import json, os, sys
for code in json.load(open(sys.argv[1])):
    exec(compile(code, "<guide snippet>", "exec"), {{"__name__": "__main__"}})
    print("{SEPARATOR}", flush=True)
sys.stderr.flush()
os._exit(0)
"""


def run_python(*codes: str, cwd: Path, env: dict) -> list[str]:
    """Run Python snippets as written, one after the other in one fresh process (each in its own namespace: the
    imports cost seconds); return each one's output."""
    snippets = cwd / "snippets.json"
    snippets.write_text(json.dumps(codes))
    done = subprocess.run([sys.executable, "-c", RUN_SNIPPETS, str(snippets)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    snippets.unlink()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout.split(SEPARATOR + "\n")[:-1]


# ---- the bookkeeping ----

def test_the_guides_exist_with_a_title_and_are_in_the_sidebar():
    sidebar = (ROOT / "nbs" / "sidebar.yml").read_text()
    for path in GUIDES:
        assert path.read_text().startswith("---\ntitle: "), path
        assert f"guides/{path.name}" in sidebar, path


def test_every_code_block_is_a_command_or_output():
    for path in GUIDES:
        kinds = {language for language, _ in code_blocks(path)}
        assert kinds <= COMMAND_LANGUAGES | OUTPUT_LANGUAGES, (path.name, kinds)
        for language, text in code_blocks(path):
            if language in ("python", "sql"):
                assert text.startswith("# " if language == "python" else "-- "), (path.name, text[:80])


def test_every_command_in_the_guides_is_in_exactly_one_mapping():
    mappings = {"RUN_HERE": RUN_HERE, "COVERED_BY": COVERED_BY, "NOT_HERE": NOT_HERE}
    for command in guide_commands():
        places = [name for name, mapping in mappings.items() if command in mapping]
        assert len(places) == 1, f"{command!r} is in {places or 'no mapping'} (it must be in exactly one)"


def test_every_mapping_entry_is_used_by_a_guide():
    unused = (set(RUN_HERE) | set(COVERED_BY) | set(NOT_HERE)) - set(guide_commands())
    assert not unused, f"mapped but in no guide: {sorted(unused)}"


def test_every_run_here_command_is_run_by_the_test_it_names():
    for command, test in RUN_HERE.items():
        function = globals().get(test)
        assert callable(function) and test.startswith("test_"), f"{command!r}: no test {test} in this file"
        assert json.dumps(command)[1:-1] in inspect.getsource(function), f"{test} does not run {command!r}"


def test_every_covering_test_exists():
    for command, (file, test, _) in COVERED_BY.items():
        path = ROOT / file
        assert path.is_file(), f"{command!r}: no {file}"
        assert re.search(rf"^def {test}\(", path.read_text(), re.MULTILINE), f"{command!r}: no {test} in {file}"


def test_every_command_that_cannot_run_here_says_why():
    assert all(len(reason) > 10 for reason in NOT_HERE.values())


# ---- commands run here ----

def test_doctor_passes_on_a_fresh_home(local_env):
    done = run_command(".venv/bin/dbxml doctor", ROOT, local_env)
    assert done.returncode == 0, done.stderr
    for check in ("python", "spark workers", "java", "disk", "delta jars"):
        assert f"ok    {check}: " in done.stdout, done.stdout


def test_info_shows_what_dev_and_prod_resolve_to(local_env):
    dev = run_command(".venv/bin/dbxml info --target dev", ROOT, local_env)
    assert dev.returncode == 0, dev.stderr
    for line in ("catalog: dbxml_dev", "schema: flights", "mlflow_registry_uri: databricks-uc"):
        assert line in dev.stdout
    prod = run_command(".venv/bin/dbxml info --target prod", ROOT, local_env)
    assert prod.returncode == 0, prod.stderr
    for line in ("catalog: dbxml_prod", "storage_root: abfss://prod@dbxmlstorage.dfs.core.windows.net/dbxml",
                 "mlflow_registry_uri: databricks-uc"):
        assert line in prod.stdout


def test_make_run_is_doctor_then_the_year(repo_copy):
    done = run_command("make -n run", repo_copy)
    assert done.returncode == 0, done.stderr
    planned = done.stdout.splitlines()
    assert "dbxml doctor --target local" in planned[0]
    assert planned[1].endswith("dbxml run monthly --target local -p month=2013-01..2013-12"), planned


def test_the_notebooks_kernel_is_the_one_in_the_venv():
    done = run_command(".venv/bin/jupyter kernelspec list", ROOT)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"python3\s+{re.escape(sys.prefix)}/share/jupyter/kernels/python3", done.stdout), done.stdout
    kernels = {json.loads(path.read_text())["metadata"]["kernelspec"]["name"]
               for path in (ROOT / "nbs" / "pipelines").glob("*.ipynb")}
    assert kernels == {"python3"}


def save_as_databricks_does(path: Path) -> None:
    "What a save from a Databricks Git folder does to a notebook (as tests/test_repository_rules.py has it), plus an edit."
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        cell.pop("id")
        cell["metadata"]["application/vnd.databricks.v1+cell"] = {"title": ""}
    edited = [cell for cell in notebook["cells"] if "set_task_values(**values)" in "".join(cell["source"])]
    assert edited, "the score notebook's call is gone: update the guide's example"
    edited[0]["source"] = "".join(edited[0]["source"]).replace("set_task_values(**values)",
                                                                "set_task_values(**values)  # checked in the workspace")
    notebook["metadata"] = {"application/vnd.databricks.v1+notebook": {
        "notebookName": "score", "widgets": {"month": {"currentValue": "2013-05"}}}}
    path.write_text(json.dumps(notebook))


def test_check_reports_a_notebook_saved_by_databricks_as_the_guide_shows(repo_copy):
    clean = run_command(".venv/bin/dbxml check", repo_copy)
    assert clean.returncode == 0, clean.stderr
    assert "notebooks clean, twins current, library and README in sync" in clean.stdout
    save_as_databricks_does(repo_copy / "nbs" / "pipelines" / "score.ipynb")
    done = run_command(".venv/bin/dbxml check", repo_copy)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [shown] = [text for language, text in code_blocks(GUIDES[0])
               if language == "text" and "Databricks UI metadata" in text]
    reported = done.stderr.splitlines()
    for line in shown.splitlines():
        assert line in reported, f"the guide shows {line!r}; dbxml check reported:\n{done.stderr}"
    assert len(reported) == len(shown.splitlines()) + 1  # and the closing count


def test_make_check_passes_on_a_copy_of_the_repository(repo_copy):
    done = run_command("make check", repo_copy, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "All checks passed!" in done.stdout
    assert "notebooks clean, twins current, library and README in sync" in done.stdout


# A registry as the monthly job leaves it: two training runs, two versions, each promoted by dbxml.registry.promote.
REGISTRY = """
import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression
from dbxml.config import load_target
from dbxml.registry import Decision, model_name, promote
from dbxml.tracking import ensure_experiment
from dbxml.train import experiment_path

target = load_target("local")
experiment, name, champion = ensure_experiment(target, experiment_path(target)), model_name(target), None
features, labels = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
for month in ("2013-02", "2013-04"):
    with mlflow.start_run(experiment_id=experiment, run_name=f"train {month}"):
        mlflow.log_params({"held_out_month": month})
        mlflow.log_metrics({"roc_auc": 0.7})
        mlflow.set_tags({"dbxml.stage": "train"})
        logged = mlflow.sklearn.log_model(LogisticRegression().fit(features, labels), name="model",
                                          serialization_format="cloudpickle", pip_requirements=["scikit-learn"])
    version = str(mlflow.register_model(logged.model_uri, name).version)
    assert promote(target, Decision(name, version, champion, month, {"roc_auc": 0.7}, None), why="test")
    champion = version
"""


def test_mlflow_snippets_and_the_rollback_on_a_local_registry(tmp_path, local_env):
    env = local_env | {"DBXML_CONFIG": str(ROOT / "dbxml.toml"), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    find, history = snippet("# Find the training runs and load the champion"), snippet("# The champion's history")
    _, found, before, rolled, after, found_after = run_python(
        REGISTRY, find, history, snippet("# Roll the champion back to the version it replaced"), history, find,
        cwd=tmp_path, env=env)
    assert "train 2013-02" in found and "train 2013-04" in found and "champion: version 2, from run " in found
    assert "champion now: 2" in before and "promoted_at" in before
    assert "local.flights.flight_delay: champion 2 -> 1" in rolled
    assert "champion now: 1" in after and "rollback from version 2" in after
    assert "champion: version 1, from run " in found_after  # models:/...@champion now loads the previous version


def test_the_second_use_case_loads_as_the_guide_shows(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "support").symlink_to(ROOT / "tests" / "support")  # the snippet runs from the root
    [printed] = run_python(snippet("# Check that dbxml finds the use case and accepts it"), cwd=tmp_path,
                           env=dict(os.environ))
    assert printed.strip() == "readings ['stations'] rain_next_hour ['station']"


def test_the_policies_print_as_the_guide_says(tmp_path):
    promotion, retrain = run_python(snippet("# The promotion policy"), snippet("# The retrain rule"),
                                    cwd=tmp_path, env=dict(os.environ))
    assert "challenger ROC AUC ≥ 0.6" in promotion and "(1 − 0.01)" in promotion
    assert "at least 3 features with PSI ≥ 0.25" in retrain


def sql_on_local_table(sql: str, table: Path) -> pd.DataFrame:
    "Run a guide's Databricks SQL with delta-rs on `table`, a local Delta table of the same name and schema."
    import pyarrow
    from deltalake import DeltaTable, QueryBuilder

    name = table.name
    query = re.sub(rf"\b\w+\.\w+\.{name}\b", name, sql)
    assert query != sql, f"the SQL names no catalog.schema.{name}"
    return pyarrow.table(QueryBuilder().register(name, DeltaTable(str(table))).execute(query).read_all()).to_pandas()


def write_table(path: Path, spec, rows: list[dict]) -> None:
    "A local Delta table at `path` with exactly `spec`'s columns."
    from deltalake import write_deltalake

    frame = pd.DataFrame(rows)
    assert list(frame.columns) == [column.name for column in spec.columns]
    write_deltalake(str(path), frame)


def test_the_watermark_and_monitoring_reads_on_local_delta_tables(tmp_path):
    from dbxml.monitor import monitoring_spec
    from dbxml.usecase import load_use_case
    from dbxml.watermark import PROCESSED_SPEC

    MONITORING_SPEC = monitoring_spec(load_use_case())

    database = tmp_path / ".dbxml" / "warehouse" / "local__flights.db"  # the local target's home, as test_jobs reads it
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    write_table(database / PROCESSED_SPEC.table, PROCESSED_SPEC,
                [{"month": month, "volume": "ok", "run": "local", "processed_at": now} for month in ("2013-02", "2013-01")])
    reasons = "3 features shifted (PSI >= 0.25): carrier, dep_hour, origin"
    write_table(database / MONITORING_SPEC.table, MONITORING_SPEC, [
        {"month": month, "model_name": "local.flights.flight_delay", "model_version": "1", "kind": kind,
         "subject": subject, "statistic": statistic, "value": value, "threshold": 0.25 if kind == "feature" else None,
         "alert": alert, "detail": detail, "monitored_at": now}
        for month, alert, detail in (("2013-04", True, reasons), ("2013-03", False, "no signal crossed its threshold"))
        for kind, subject, statistic, value in (("feature", "carrier", "psi", 0.3), ("signal", "retrain", "retrain",
                                                                                   float(alert)))])
    processed, signals = run_python(snippet("# Which months are processed"),
                                    snippet("# The retrain signal of every month"), cwd=tmp_path, env=dict(os.environ))
    assert processed.index("2013-01") < processed.index("2013-02") and "local" in processed
    assert "2013-03" in signals and reasons.split(":")[0] in signals and "carrier" not in signals.split("2013-03")[0]
    months = sql_on_local_table(snippet("-- Which months are processed in prod"), database / PROCESSED_SPEC.table)
    assert list(months.columns) == ["month", "volume", "run", "processed_at"] and months.month.tolist() == ["2013-01",
                                                                                                          "2013-02"]
    rows = sql_on_local_table(snippet("-- The retrain signal of every month in prod"), database / MONITORING_SPEC.table)
    assert rows.to_dict("list") == {"month": ["2013-03", "2013-04"], "model_version": ["1", "1"],
                                    "alert": [False, True], "detail": ["no signal crossed its threshold", reasons]}


def test_the_terraform_settings_copies_stay_out_of_git(repo_copy):
    for command in ("cp infra/backend.hcl.example infra/backend.hcl",
                    "cp infra/terraform.tfvars.example infra/terraform.tfvars",
                    "cp infra/github/terraform.tfvars.example infra/github/terraform.tfvars"):
        done = run_command(command, repo_copy)
        assert done.returncode == 0, done.stderr
        assert (repo_copy / shlex.split(command)[-1]).is_file()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo_copy,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", f"a filled-in Terraform setting would be committed:\n{status}"


def test_terraform_fmt_is_clean_as_the_guide_runs_it():
    if subprocess.run(["which", "terraform"], capture_output=True).returncode != 0:
        pytest.skip("terraform is not on PATH (CI's test job installs it)")
    done = run_command("terraform fmt -check -recursive infra", ROOT)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
