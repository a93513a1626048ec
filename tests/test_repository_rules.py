"""The repository's own rules, each shown to fail when broken: notebooks are tests,
the library is exported, twins are current, notebooks are clean."""
import json
import sys

from conftest import run_tool

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
