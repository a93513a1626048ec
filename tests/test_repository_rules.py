"""The repository's own rules, each shown to fail when broken: notebooks are tests,
the library is exported, twins are current, notebooks are clean."""
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from conftest import ROOT, run_tool

CONFIG_NOTEBOOK = "nbs/00_config.ipynb"


def edit_notebook(path, old, new):
    "Replace `old` by `new` in one cell of the notebook at `path` (the cell must contain it)."
    notebook = json.loads(path.read_text())
    cells = [cell for cell in notebook["cells"] if old in "".join(cell["source"])]
    assert cells, f"{old!r} not found in {path}"
    cells[0]["source"] = "".join(cells[0]["source"]).replace(old, new)
    path.write_text(json.dumps(notebook, indent=1) + "\n")


def test_the_real_tree_passes_the_hygiene_check():
    result = run_tool("dbxml", "check", "--no-sync")
    assert result.returncode == 0, result.stderr


def layer_check(root):
    "import-linter's contracts (pyproject.toml) over the package in `root`."
    return run_tool("lint-imports", "--no-cache", cwd=root, env={**os.environ, "PYTHONPATH": str(root)})


def test_the_layers_hold_and_a_wrong_way_import_breaks_them(tmp_path):
    shutil.copytree(ROOT / "dbxml", tmp_path / "dbxml")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    kept = layer_check(tmp_path)
    assert kept.returncode == 0 and "3 kept, 0 broken" in kept.stdout, kept.stdout[-2000:]
    tables = tmp_path / "dbxml" / "tables.py"
    tables.write_text(tables.read_text() + "\nfrom dbxml.lakehouse import run_lakehouse  # noqa: E402\n")
    broken = layer_check(tmp_path)
    assert broken.returncode == 1, broken.stdout[-2000:]
    assert "dbxml.tables is not allowed to import dbxml.lakehouse" in broken.stdout
    assert "BROKEN" in broken.stdout


def test_nbdev_test_fails_when_an_exported_function_breaks(repo_copy):
    assert run_tool("nbdev_test", "--path", CONFIG_NOTEBOOK, cwd=repo_copy).returncode == 0
    # break the validation: every identifier is accepted
    edit_notebook(repo_copy / CONFIG_NOTEBOOK, 'if not isinstance(value, str) or not IDENTIFIER.fullmatch(value)',
                  'if False and not IDENTIFIER.fullmatch(value)')
    result = run_tool("nbdev_test", "--path", CONFIG_NOTEBOOK, cwd=repo_copy)
    assert result.returncode != 0
    assert "00_config.ipynb" in result.stderr + result.stdout


def test_sync_check_fails_when_a_notebook_is_edited_without_export(repo_copy):
    assert run_tool("dbxml", "check", "--root", str(repo_copy)).returncode == 0
    edit_notebook(repo_copy / CONFIG_NOTEBOOK, "def find_config(", "def locate_config(")
    # keep the twin current, so that only the missing export is wrong
    assert run_tool("jupytext", "--sync", CONFIG_NOTEBOOK, cwd=repo_copy).returncode == 0
    result = run_tool("dbxml", "check", "--root", str(repo_copy))
    assert result.returncode == 1
    assert "dbxml/config.py: changed by nbdev_clean, nbdev_export" in result.stderr


def test_hygiene_check_fails_on_a_notebook_saved_by_databricks(repo_copy):
    path = repo_copy / "nbs" / "02_catalog.ipynb"
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        cell.pop("id")
        cell["metadata"]["application/vnd.databricks.v1+cell"] = {"title": ""}
    notebook["metadata"] = {"application/vnd.databricks.v1+notebook": {
        "notebookName": "02_catalog", "widgets": {"month": {"currentValue": "2013-05"}}}}
    path.write_text(json.dumps(notebook))
    result = run_tool("dbxml", "check", "--no-sync", "--root", str(repo_copy))
    assert result.returncode == 1
    cells = len(notebook["cells"])
    for problem in ["no kernelspec", f"{cells} cells without an id", "Databricks UI metadata", "widget state"]:
        assert f"nbs/02_catalog.ipynb: {problem}" in result.stderr
    assert "Traceback" not in result.stderr


def save_the_databricks_way(path, widgets=None):
    """Re-save the notebook at `path` as a Databricks Git folder commits an .ipynb (cell outputs excluded): no cell
    ids, tags or kernelspec, Databricks' UI metadata on the notebook and on every cell, `execution_count` 0, nbformat
    4.0, keys sorted. `widgets` are the notebook's widgets with their values, as Databricks stores them."""
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        cell.pop("id")
        code = cell["cell_type"] == "code"
        cell["metadata"] = {"application/vnd.databricks.v1+cell": {
            "cellMetadata": {"byteLimit": 2048000, "rowLimit": 10000} if code else {}, "inputWidgets": {},
            "nuid": str(uuid.uuid4()), "showTitle": False, "tableResultSettingsMap": {}, "title": ""}}
        if code:
            cell.update(execution_count=0, outputs=[])
    notebook["metadata"] = {
        "application/vnd.databricks.v1+notebook": {
            "computePreferences": None, "dashboards": [], "environmentMetadata": None, "inputWidgetPreferences": None,
            "language": "python", "notebookMetadata": {"pythonIndentUnit": 4}, "notebookName": path.stem,
            "widgets": widgets or {}},
        "language_info": {"name": "python"}}
    notebook["nbformat_minor"] = 0
    path.write_text(json.dumps(notebook, indent=1, sort_keys=True))


def text_widget(name, value):
    "A text widget as Databricks stores it in a notebook's metadata, with its current value."
    info = {"defaultValue": "", "label": None, "name": name}
    return {name: {"currentValue": value, "nuid": str(uuid.uuid4()),
                   "typedWidgetInfo": {**info, "autoCreated": False, "parameterDataType": "String",
                                       "options": {"widgetDisplayType": "Text", "validationRegex": None}},
                   "widgetInfo": {**info, "widgetType": "text",
                                  "options": {"widgetType": "text", "autoCreated": None, "validationRegex": None}}}}


def git_status(repo):
    return subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize("notebook, widgets", [
    ("nbs/02_catalog.ipynb", None),
    # a task notebook: its papermill `parameters` tag must come back, its job parameter's widget value must go
    ("nbs/pipelines/lakehouse.ipynb", text_widget("month", "2013-05"))])
def test_check_fix_undoes_a_databricks_save_without_changes_to_the_last_byte(repo_copy, notebook, widgets):
    save_the_databricks_way(repo_copy / notebook, widgets)
    refused = run_tool("dbxml", "check", "--root", str(repo_copy))
    assert refused.returncode == 1
    assert f"{notebook}: no kernelspec" in refused.stderr and "run `dbxml check --fix`" in refused.stderr
    fixed = run_tool("dbxml", "check", "--fix", "--root", str(repo_copy))
    assert fixed.returncode == 0, fixed.stderr
    assert f"{notebook}: fixed " in fixed.stdout  # the plain check had given the cells random ids: fixed back too
    assert run_tool("dbxml", "check", "--root", str(repo_copy)).returncode == 0
    assert git_status(repo_copy) == ""


def test_check_fix_keeps_an_edit_made_on_databricks_and_exports_it(repo_copy):
    path = repo_copy / "nbs" / "02_catalog.ipynb"
    committed = json.loads(path.read_text())
    edit_notebook(path, "def local_database(", "def local_database_name(")
    edited = next(index for index, cell in enumerate(committed["cells"])
                  if "def local_database(" in "".join(cell["source"]))
    save_the_databricks_way(path)
    fixed = run_tool("dbxml", "check", "--fix", "--root", str(repo_copy))
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.splitlines() == [
        "dbxml/_modidx.py: regenerated by nbdev_clean, nbdev_export or the README build",
        "dbxml/catalog.py: regenerated by nbdev_clean, nbdev_export or the README build",
        "nbs/02_catalog.ipynb: fixed no kernelspec (papermill cannot run it); "
        f"{len(committed['cells'])} cells without an id; Databricks UI metadata (saved from a Databricks Git folder); "
        "widget state in the metadata",
        "nbs_py/02_catalog.py: rewritten from nbs/02_catalog.ipynb",
        "notebooks clean, twins current, library and README in sync"]
    for generated in ["nbs_py/02_catalog.py", "dbxml/catalog.py"]:
        assert "def local_database_name(" in (repo_copy / generated).read_text()
    cells = json.loads(path.read_text())["cells"]
    assert [cell["id"] for cell in cells] == [cell["id"] for cell in committed["cells"]]  # the edited one's too
    assert "def local_database_name(" in "".join(cells[edited]["source"])
    assert set(git_status(repo_copy).split()) == {"M", "nbs/02_catalog.ipynb", "nbs_py/02_catalog.py",
                                                  "dbxml/catalog.py", "dbxml/_modidx.py"}
    # the notebook's diff is the edit: one line (`edit_notebook` stored the source as one string, as Databricks may)
    numstat = subprocess.run(["git", "diff", "--numstat", "nbs/02_catalog.ipynb"], cwd=repo_copy, capture_output=True,
                             text=True, check=True).stdout
    assert numstat.split()[:2] == ["1", "1"], numstat
    assert run_tool("dbxml", "check", "--root", str(repo_copy)).returncode == 0


def test_check_fix_leaves_a_token_in_an_output_to_a_person(repo_copy):
    path = repo_copy / "nbs" / "02_catalog.ipynb"
    save_the_databricks_way(path)
    notebook = json.loads(path.read_text())
    code = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    token = "dapi" + "0123456789abcdef" * 2  # built here, so that this file holds nothing shaped like a token
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": [f"token: {token}\n"]}]
    path.write_text(json.dumps(notebook, indent=1, sort_keys=True))
    saved = path.read_text()
    result = run_tool("dbxml", "check", "--fix", "--root", str(repo_copy))
    assert result.returncode == 1
    assert "--fix changed nothing: a token or key is in nbs/02_catalog.ipynb: cell" in result.stderr
    assert "Databricks personal access token" in result.stderr and "revoke the credential" in result.stderr
    assert token not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert path.read_text() == saved and git_status(repo_copy) == " M nbs/02_catalog.ipynb\n"


def test_check_fix_reports_what_it_cannot_fix(repo_copy):
    save_the_databricks_way(repo_copy / "nbs" / "02_catalog.ipynb")
    (repo_copy / "nbs_py" / "99_gone.py").write_text("# %%\nprint('its notebook was deleted')\n")
    result = run_tool("dbxml", "check", "--fix", "--root", str(repo_copy))
    assert result.returncode == 1
    assert "nbs/02_catalog.ipynb: fixed " in result.stdout
    assert "nbs_py/99_gone.py: a twin whose notebook is gone" in result.stderr
    assert "1 notebook hygiene problem(s) that --fix cannot fix; see above." in result.stderr


def test_hygiene_check_fails_on_a_missing_or_stale_twin(repo_copy):
    (repo_copy / "nbs_py" / "01_spark.py").unlink()
    edit_notebook(repo_copy / "nbs" / "02_catalog.ipynb", "def local_database(", "def local_db(")
    result = run_tool("dbxml", "check", "--no-sync", "--root", str(repo_copy))
    assert result.returncode == 1
    assert "no jupytext twin" in result.stderr and "nbs_py/02_catalog.py is stale" in result.stderr


def test_nbdev_clean_keeps_the_papermill_parameters_tag(repo_copy):
    path = repo_copy / CONFIG_NOTEBOOK
    notebook = json.loads(path.read_text())
    notebook["cells"][1]["metadata"] = {"tags": ["parameters"], "scrolled": True}
    path.write_text(json.dumps(notebook))
    assert run_tool("nbdev_clean", cwd=repo_copy).returncode == 0
    assert json.loads(path.read_text())["cells"][1]["metadata"] == {"tags": ["parameters"]}


def test_pre_commit_runs_the_same_rules(repo_copy):
    (repo_copy / ".venv").symlink_to(sys.prefix)  # the hooks run the tools installed in .venv
    clean = run_tool("pre-commit", "run", "--all-files", cwd=repo_copy)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    path = repo_copy / "nbs" / "02_catalog.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"][2]["source"] = "".join(notebook["cells"][2]["source"]) + "\nimport os  # unused"
    path.write_text(json.dumps(notebook, indent=1) + "\n")
    broken = run_tool("pre-commit", "run", "--all-files", cwd=repo_copy)
    assert broken.returncode == 1
    failed = {line.split("..")[0] for line in broken.stdout.splitlines() if line.endswith("Failed")}
    # the twin and the library were not regenerated, and the new import is unused
    assert failed == {"jupytext twins in nbs_py/", "nbdev_export (library in sync)", "ruff"}, broken.stdout


def test_make_test_runs_every_suite_behind_the_python_guard_and_the_guard_names_its_caller(tmp_path):
    import os
    import subprocess

    from conftest import ROOT

    outside_make = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    planned = subprocess.run(["make", "--no-print-directory", "-n", "test"], cwd=ROOT, env=outside_make,
                             capture_output=True, text=True).stdout.splitlines()
    suites = [line for line in planned if any(tool in line for tool in ("dbxml doctor", "nbdev_test", "pytest"))]
    assert len(suites) == 3 and planned[0] == suites[0], planned  # doctor first, and each suite guarded
    guard = str(ROOT / ".ci" / "guard")
    for line in suites:
        assert f'PATH="{guard}:$PATH"' in line and "PYTHONNOUSERSITE=1" in line and "-u PYTHONPATH" in line, line
    # a stand-in caller, as Spark's JVM would be, starting "python3" by name
    caller = tmp_path / "spark-like-launcher"
    caller.write_text("#!/bin/sh\npython3 -m pyspark.daemon pyspark.worker\n")
    caller.chmod(0o755)
    started = subprocess.run([str(caller)], env={"PATH": f"{guard}:/usr/bin:/bin"}, capture_output=True, text=True)
    assert started.returncode == 97
    assert "dbxml guard: 'python3 -m pyspark.daemon pyspark.worker' was started from PATH" in started.stderr
    assert "spark-like-launcher" in started.stderr  # who called it
