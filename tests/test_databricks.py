"""The papermill engine for Databricks against a fake workspace: a local HTTP server that checks every
request against the Databricks SDK's own types and answers with responses built from them. No real
workspace is involved (none is reachable); what this proves is that the engine's requests are ones the
SDK itself would send, and that it reads the SDK's answers right."""
import base64
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
from conftest import run_tool
from databricks.sdk.service.jobs import RunResultState
from papermill.engines import papermill_engines
from papermill.exceptions import PapermillExecutionError
from support.fake_workspace import TASK_RUN_ID, TOKEN, USER, FakeWorkspace

from dbxml.config import DbxmlError
from dbxml.databricks import DatabricksEngine, check_auth, workspace_client

SUBMIT, IMPORT = "/api/2.2/jobs/runs/submit", "/api/2.0/workspace/import"


def clear_databricks_environment(monkeypatch, tmp_path):
    "No DATABRICKS_*/ARM_* variables, and a ~/.databrickscfg that does not exist."
    for name in [name for name in os.environ if name.startswith(("DATABRICKS_", "ARM_", "DBXML_DATABRICKS_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "missing.databrickscfg"))


@pytest.fixture
def signed_in(monkeypatch, tmp_path):
    "An environment whose only credentials are a token for the fake workspace, given to the test."
    def sign_in(workspace):
        clear_databricks_environment(monkeypatch, tmp_path)
        monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    return sign_in


def tiny_notebook(folder: Path) -> Path:
    "A notebook with a `parameters` cell and one cell that uses it."
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell('month = "2013-01"', metadata={"tags": ["parameters"]}),
               nbformat.v4.new_code_cell("print(month)")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                  "language_info": {"name": "python"}})
    path = folder / "monthly.ipynb"
    nbformat.write(nb, path)
    return path


def run_on_fake(workspace, tmp_path, **engine_options):
    "papermill with the databricks engine on the tiny notebook, month 2013-05; returns the output path."
    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(tiny_notebook(tmp_path)), str(output), parameters={"month": "2013-05"},
                               engine_name="databricks", progress_bar=False, **engine_options)
    return output


def test_a_successful_run_imports_the_parameterised_notebook_and_writes_the_result_back(tmp_path, signed_in):
    with FakeWorkspace() as workspace:
        signed_in(workspace)
        output = run_on_fake(workspace, tmp_path, dependencies=["mlflow>=3.17"])
    assert workspace.problems == []
    [imported] = workspace.bodies(IMPORT)
    assert imported["path"].startswith(f"/Workspace/Users/{USER}/.dbxml/papermill/monthly-")
    assert imported["format"] == "JUPYTER"
    sent = nbformat.reads(base64.b64decode(imported["content"]).decode(), as_version=4)
    injected = [cell for cell in sent.cells if "injected-parameters" in cell.metadata.get("tags", [])]
    assert len(injected) == 1 and 'month = "2013-05"' in injected[0].source
    [submitted] = workspace.bodies(SUBMIT)
    [task] = submitted["tasks"]
    assert task["notebook_task"] == {"notebook_path": imported["path"], "source": "WORKSPACE",
                                     "base_parameters": {"month": "2013-05"}}
    assert "existing_cluster_id" not in task and task["environment_key"] == "default"
    assert submitted["environments"] == [{"environment_key": "default",
                                          "spec": {"environment_version": "3", "dependencies": ["mlflow>=3.17"]}}]
    assert workspace.bodies("/api/2.2/jobs/runs/get-output") == [{"run_id": TASK_RUN_ID}]
    result = nbformat.read(output, as_version=4)
    record = result.metadata.dbxml.databricks_run
    assert (record.url, record.result_state, record.exit_value) == (workspace.run_page_url, "SUCCESS", "2013-05 done")
    assert workspace.run_page_url in result.cells[-1].outputs[0].text
    assert (tmp_path / "out.databricks.html").read_text() == f"<html><body>run {TASK_RUN_ID}</body></html>"


def test_an_existing_cluster_replaces_the_serverless_environment(tmp_path, signed_in, monkeypatch):
    with FakeWorkspace() as workspace:
        signed_in(workspace)
        monkeypatch.setenv("DBXML_DATABRICKS_CLUSTER_ID", "0101-123456-abcdefgh")
        run_on_fake(workspace, tmp_path)
    assert workspace.problems == []
    [submitted] = workspace.bodies(SUBMIT)
    assert submitted["tasks"][0]["existing_cluster_id"] == "0101-123456-abcdefgh"
    assert "environments" not in submitted and "environment_key" not in submitted["tasks"][0]


def test_a_failed_run_raises_with_the_run_page_and_the_remote_error(tmp_path, signed_in):
    with FakeWorkspace(RunResultState.FAILED) as workspace:
        signed_in(workspace)
        with pytest.raises(PapermillExecutionError) as raised:
            run_on_fake(workspace, tmp_path)
    assert workspace.problems == []
    message = str(raised.value)
    assert "Databricks run 1001 ended FAILED: Task notebook failed." in message
    assert "ZeroDivisionError: division by zero" in message and workspace.run_page_url in message
    result = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert result.metadata.dbxml.databricks_run.result_state == "FAILED"
    assert result.metadata.papermill.exception is True


def test_the_papermill_command_line_runs_a_notebook_on_databricks(tmp_path, signed_in):
    with FakeWorkspace() as workspace:
        signed_in(workspace)
        output = tmp_path / "cli.ipynb"
        result = run_tool("papermill", str(tiny_notebook(tmp_path)), str(output), "-p", "month", "2013-05",
                          "--engine", "databricks", env=dict(os.environ), timeout=120)
    assert result.returncode == 0, result.stderr
    assert workspace.problems == []
    assert workspace.bodies(SUBMIT)[0]["tasks"][0]["notebook_task"]["base_parameters"] == {"month": "2013-05"}
    assert nbformat.read(output, as_version=4).metadata.dbxml.databricks_run.exit_value == "2013-05 done"


def test_missing_credentials_give_one_clear_error(tmp_path, monkeypatch):
    clear_databricks_environment(monkeypatch, tmp_path)
    with pytest.raises(DbxmlError) as raised:
        workspace_client()
    message = str(raised.value)
    assert message.startswith("cannot connect to Databricks with the SDK's defaults (default auth: no credentials found.")
    assert "missing.databrickscfg" in message and "\n" not in message
    for way in ("DATABRICKS_HOST and DATABRICKS_TOKEN", "~/.databrickscfg", "ARM_CLIENT_ID", "DATABRICKS_AUTH_TYPE=github-oidc"):
        assert way in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_refused_token_gives_one_clear_error_naming_the_host(tmp_path, monkeypatch):
    clear_databricks_environment(monkeypatch, tmp_path)
    with FakeWorkspace() as workspace:
        assert check_auth(workspace.client()) == USER
        with pytest.raises(DbxmlError) as raised:
            check_auth(workspace.client(token="dapi-wrong"))
    assert str(raised.value).startswith(f"Databricks at {workspace.url} refused the pat credentials: Invalid access token.")


def test_the_engine_is_found_through_its_entry_point():
    papermill_engines.register_entry_points()
    assert papermill_engines.get_engine("databricks") is DatabricksEngine


def test_the_module_imports_before_papermill_without_a_cycle():
    code = "import dbxml.databricks, papermill.engines as e; print(e.papermill_engines.get_engine('databricks'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "dbxml.databricks.DatabricksEngine" in result.stdout


def test_the_fake_workspace_rejects_a_field_the_sdk_does_not_know(tmp_path, monkeypatch):
    clear_databricks_environment(monkeypatch, tmp_path)
    with FakeWorkspace() as workspace:
        client = workspace.client()
        body = {"run_name": "r", "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/x", "sorce": "WORKSPACE"}}]}
        with pytest.raises(Exception, match="not a valid SubmitTask"):
            client.api_client.do("POST", SUBMIT, body=body)
    assert len(workspace.problems) == 1 and "sorce" in workspace.problems[0]
