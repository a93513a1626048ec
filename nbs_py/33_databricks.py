# %% [markdown]
# # Databricks
# > Run any notebook on Databricks with papermill: `papermill in.ipynb out.ipynb -p month 2013-05 --engine databricks`.
#
# Locally papermill runs a notebook in a Jupyter kernel. This module adds a papermill
# *engine* that runs the same parameterised notebook as a one-time Databricks job run
# instead (serverless by default), waits for it, and writes what the workspace can give
# back into the output notebook: the run's id, page and state, the notebook's exit
# value, and the executed notebook as HTML. A notebook that fails remotely fails the
# papermill call the way a local failure does, with the run page and the remote error
# in the message.
#
# Credentials are the Databricks SDK's business: its unified configuration already
# knows profiles, environment variables, Azure service principals and GitHub OIDC.
# This module only turns the SDK's failures into one message that says what was tried
# and how to authenticate.
#
# **What was not run against a real workspace: all of it.** No Databricks workspace is
# reachable from the machines this was written on. Every request the engine makes was
# checked offline instead: `tests/test_databricks.py` runs the engine against a local
# HTTP server that validates each request body against the SDK's own types and answers
# with responses built from them. Not proven: that a workspace accepts the imported
# notebook as is, that serverless environment version 3 installs the default
# dependencies, and what the exported HTML looks like.

# %%
#| default_exp databricks

# %%
#| export
from __future__ import annotations

import base64
import importlib.metadata
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import nbformat
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, OperationFailed
from databricks.sdk.service.compute import Environment
from databricks.sdk.service.jobs import (
    JobEnvironment,
    NotebookTask,
    Run,
    RunResultState,
    Source,
    SubmitTask,
    ViewsToExport,
)
from databricks.sdk.service.workspace import ImportFormat

from dbxml.config import DbxmlError

# %%
#| hide
from types import SimpleNamespace

from databricks.sdk.errors import Unauthenticated
from databricks.sdk.service.jobs import RunLifeCycleState, RunState
from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## A client, or one clear reason why not
#
# `workspace_client` builds the SDK's `WorkspaceClient` and lets the SDK find the
# credentials. When it finds none, the SDK raises a `ValueError` that starts with a
# link and ends with what it looked at; the user gets that last part and the ways to
# authenticate, in one line.

# %%
#| export
AUTH_HELP = ("Authenticate one of these ways: DATABRICKS_HOST and DATABRICKS_TOKEN; a profile in ~/.databrickscfg "
             "(DATABRICKS_CONFIG_PROFILE names it; `databricks auth login` creates one); an Azure service principal: "
             "DATABRICKS_HOST with ARM_CLIENT_ID, ARM_TENANT_ID and ARM_CLIENT_SECRET; GitHub Actions OIDC: "
             "DATABRICKS_HOST, DATABRICKS_AUTH_TYPE=github-oidc and DATABRICKS_CLIENT_ID.")

def _one_line(text: str) -> str:
    "`text` with its whitespace (newlines too) collapsed to single spaces."
    return " ".join(str(text).split())

def workspace_client(profile: str | None = None,  # a profile of ~/.databrickscfg (default: the SDK's choice)
                     host: str | None = None,  # the workspace URL, if not from the profile or environment
                    ) -> WorkspaceClient:
    "A Databricks `WorkspaceClient` configured by the SDK's unified authentication, or a `DbxmlError` saying why not."
    arguments = {key: value for key, value in (("profile", profile), ("host", host)) if value}
    try:
        return WorkspaceClient(**arguments)
    except ValueError as error:
        tried = ", ".join(f"{key} {value}" for key, value in arguments.items()) or "the SDK's defaults"
        reason = re.sub(r"cannot configure default credentials, please check \S+ to configure credentials for "
                        r"your preferred authentication method\.", "no credentials found.", _one_line(error))
        raise DbxmlError(f"cannot connect to Databricks with {tried} ({reason}). {AUTH_HELP}") from None


# %% [markdown]
# To show the failure, the environment is emptied of Databricks settings and the SDK is
# pointed at a configuration file that does not exist:

# %%
@contextmanager
def no_databricks_credentials():
    "Inside: no DATABRICKS_*/ARM_* variables and no ~/.databrickscfg; afterwards the environment as it was."
    saved = dict(os.environ)
    for key in [key for key in os.environ if key.startswith(("DATABRICKS_", "ARM_"))]:
        del os.environ[key]
    os.environ["DATABRICKS_CONFIG_FILE"] = "/nonexistent/.databrickscfg"
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)

with no_databricks_credentials():
    try:
        workspace_client()
    except DbxmlError as error:
        message = str(error)
print(message)
assert message.startswith("cannot connect to Databricks with the SDK's defaults (default auth: no credentials found.")
for way in ("DATABRICKS_TOKEN", "~/.databrickscfg", "ARM_CLIENT_SECRET", "github-oidc"):
    assert way in message
assert "\n" not in message

# %% [markdown]
# A profile that does not exist is named in the message:

# %%
with no_databricks_credentials():
    test_fail(lambda: workspace_client(profile="prod"), contains="with profile prod")


# %% [markdown]
# Building a client checks the configuration, not the credentials: a wrong token is
# found out by the first call. `check_auth` makes that call (who am I?) and names the
# host that said no.

# %%
#| export
def check_auth(client: WorkspaceClient) -> str:
    "The user (or service principal) name `client` is signed in as, or a `DbxmlError` naming the host that refused."
    try:
        return client.current_user.me().user_name
    except DatabricksError as error:
        raise DbxmlError(f"Databricks at {client.config.host} refused the {client.config.auth_type} credentials: "
                         f"{_one_line(error)}. {AUTH_HELP}") from None


# %% [markdown]
# A stand-in client whose token is refused (the real 401 over HTTP is in
# `tests/test_databricks.py`):

# %%
def refused():
    raise Unauthenticated("Invalid access token.")

stale = SimpleNamespace(config=SimpleNamespace(host="https://adb-1.azuredatabricks.net", auth_type="pat"),
                        current_user=SimpleNamespace(me=refused))
test_fail(lambda: check_auth(stale),
          contains="Databricks at https://adb-1.azuredatabricks.net refused the pat credentials: Invalid access token.")

# %% [markdown]
# ## What the run needs
#
# A serverless run installs its Python packages from the environment spec of the job.
# The dbxml wheel is not on any index a workspace can reach, so the default is dbxml's
# own requirements, without the development extras, without those marked for older
# Pythons, and without `pyspark` and `delta-spark`, which the Databricks runtime provides
# (installing pyspark on serverless would replace its Spark Connect client). A notebook
# that imports `dbxml` itself needs the wheel too: put its path (a workspace file or a
# Unity Catalog volume) in `DBXML_DATABRICKS_DEPENDENCIES`, which replaces the default
# list (comma-separated).

# %%
#| export
RUNTIME_PROVIDED = ("pyspark", "delta-spark")  # requirements the Databricks runtime already has

def _requirement_name(requirement: str) -> str:
    "The distribution name a requirement string starts with, e.g. `pyspark` for `pyspark[connect]==4.2.0`."
    return re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0].lower()

def default_dependencies(distribution: str = "dbxml") -> tuple[str, ...]:
    "The requirements of `distribution` that a serverless run should install: unconditional ones the runtime lacks."
    requirements = importlib.metadata.requires(distribution) or []
    return tuple(requirement for requirement in requirements
                 if ";" not in requirement and _requirement_name(requirement) not in RUNTIME_PROVIDED)


# %%
dependencies = default_dependencies()
print(dependencies)
assert any(dependency.startswith("mlflow") for dependency in dependencies)
assert not [dependency for dependency in dependencies if dependency.startswith(("pyspark", "delta-spark", "nbdev", "tomli"))]

# %% [markdown]
# Everything the engine can be told comes from papermill's engine keywords
# (`papermill.execute_notebook(..., engine_name="databricks", cluster_id=...)`) or, for
# the command line, which passes no engine keywords, from the environment. The profile
# and host are the SDK's own (`DATABRICKS_CONFIG_PROFILE`, `DATABRICKS_HOST`).

# %%
#| export
DEFAULT_TIMEOUT = timedelta(hours=2)  # the longest a run may take, waiting and remotely

@dataclass(frozen=True)
class RunSettings:
    "How the engine runs a notebook on Databricks."
    profile: str | None = None  # ~/.databrickscfg profile (None: the SDK's choice)
    host: str | None = None  # workspace URL (None: from the profile or environment)
    folder: str | None = None  # workspace folder for the imported notebooks (None: the user's `.dbxml/papermill`)
    cluster_id: str | None = None  # an existing cluster to run on (None: serverless)
    dependencies: tuple[str, ...] = ()  # packages the serverless environment installs
    timeout: timedelta = DEFAULT_TIMEOUT

def run_settings(options: Mapping,  # papermill's engine keywords
                 environ: Mapping[str, str] | None = None,  # the environment (default: `os.environ`)
                ) -> RunSettings:
    "The settings from papermill's engine keywords, else `DBXML_DATABRICKS_*` variables, else the defaults."
    environ = os.environ if environ is None else environ
    dependencies = options.get("dependencies", environ.get("DBXML_DATABRICKS_DEPENDENCIES"))
    if dependencies is None:
        dependencies = default_dependencies()
    elif isinstance(dependencies, str):
        dependencies = [dependency.strip() for dependency in dependencies.split(",")]
    timeout = options.get("execution_timeout")  # papermill's own option, in seconds
    return RunSettings(profile=options.get("profile"), host=options.get("host"),
                       folder=options.get("folder", environ.get("DBXML_DATABRICKS_FOLDER")),
                       cluster_id=options.get("cluster_id", environ.get("DBXML_DATABRICKS_CLUSTER_ID")),
                       dependencies=tuple(dependency for dependency in dependencies if dependency),
                       timeout=timedelta(seconds=timeout) if timeout else DEFAULT_TIMEOUT)


# %%
settings = run_settings({"cluster_id": "0101-abc"}, {"DBXML_DATABRICKS_DEPENDENCIES": "mlflow>=3.17, /Volumes/a/b/dbxml.whl",
                                                     "DBXML_DATABRICKS_CLUSTER_ID": "ignored"})
test_eq((settings.cluster_id, settings.dependencies), ("0101-abc", ("mlflow>=3.17", "/Volumes/a/b/dbxml.whl")))
test_eq(run_settings({"execution_timeout": 600}, {}).timeout, timedelta(minutes=10))
test_eq(run_settings({}, {}).dependencies, default_dependencies())


# %% [markdown]
# ## Import, submit, wait
#
# The notebook papermill has parameterised (its injected cell included) is imported as
# a Jupyter notebook under a fresh name, so concurrent runs never overwrite each other.
# The imported copies stay, so that a run's notebook can be opened in the workspace.
# SDK errors on the way become a `DbxmlError` that says which step failed where.

# %%
#| export
@contextmanager
def _step(client: WorkspaceClient, what: str) -> Iterator[None]:
    "Turn a Databricks API error inside into a `DbxmlError` naming the step and the host."
    try:
        yield
    except DatabricksError as error:
        raise DbxmlError(f"{what} failed on {client.config.host}: {_one_line(error)}") from None

def default_folder(user: str) -> str:
    "The workspace folder the engine imports notebooks into when none is configured."
    return f"/Workspace/Users/{user}/.dbxml/papermill"

def import_notebook(client: WorkspaceClient, nb: nbformat.NotebookNode,
                    path: str,  # the workspace path, without `.ipynb`
                   ) -> str:
    "Import `nb` into the workspace at `path` (creating its folder, replacing any notebook there); returns `path`."
    with _step(client, f"importing the notebook to {path}"):
        client.workspace.mkdirs(path.rsplit("/", 1)[0])
        content = base64.b64encode(nbformat.writes(nb).encode()).decode()
        client.workspace.import_(path=path, content=content, format=ImportFormat.JUPYTER, overwrite=True)
    return path


# %% [markdown]
# The run is one notebook task. Its parameters go in as `base_parameters`, which is how
# Databricks hands them to the notebook (as string widgets); the injected cell sets
# them too. Serverless runs name an environment (version 3, with the dependencies);
# a run on an existing cluster uses whatever libraries that cluster has.

# %%
#| export
TASK_KEY, ENVIRONMENT_KEY, ENVIRONMENT_VERSION = "notebook", "default", "3"

def submit_request(notebook_path: str, parameters: Mapping, settings: RunSettings, run_name: str) -> dict:
    "The keyword arguments of `jobs.submit` for a one-time run of the notebook at `notebook_path`."
    task = SubmitTask(task_key=TASK_KEY,
                      notebook_task=NotebookTask(notebook_path=notebook_path, source=Source.WORKSPACE,
                                                 base_parameters={name: str(value) for name, value in parameters.items()}))
    environments = None
    if settings.cluster_id:
        task.existing_cluster_id = settings.cluster_id
    else:
        task.environment_key = ENVIRONMENT_KEY
        spec = Environment(environment_version=ENVIRONMENT_VERSION, dependencies=list(settings.dependencies))
        environments = [JobEnvironment(environment_key=ENVIRONMENT_KEY, spec=spec)]
    return {"run_name": run_name, "tasks": [task], "environments": environments,
            "timeout_seconds": int(settings.timeout.total_seconds())}


# %%
serverless = submit_request("/Workspace/Users/me/nb", {"month": "2013-05", "window": 3}, RunSettings(dependencies=("mlflow",)), "r")
test_eq(serverless["tasks"][0].as_dict(),
        {"task_key": "notebook", "environment_key": "default",
         "notebook_task": {"notebook_path": "/Workspace/Users/me/nb", "source": "WORKSPACE",
                           "base_parameters": {"month": "2013-05", "window": "3"}}})
test_eq(serverless["environments"][0].as_dict(),
        {"environment_key": "default", "spec": {"environment_version": "3", "dependencies": ["mlflow"]}})
on_cluster = submit_request("/Workspace/Users/me/nb", {}, RunSettings(cluster_id="0101-abc"), "r")
test_eq((on_cluster["tasks"][0].existing_cluster_id, on_cluster["tasks"][0].environment_key, on_cluster["environments"]),
        ("0101-abc", None, None))


# %% [markdown]
# `jobs.submit` returns a waiter; its result is the finished `Run`, whether the notebook
# succeeded or not. A run that ends in `INTERNAL_ERROR` makes the waiter raise instead,
# so it is fetched and reported like any other failure.

# %%
#| export
def submit_notebook_run(client: WorkspaceClient, notebook_path: str, parameters: Mapping,
                        settings: RunSettings, run_name: str) -> Run:
    "Submit a one-time run of the notebook at `notebook_path` and wait until it ends; returns the finished `Run`."
    with _step(client, f"submitting a run of {notebook_path}"):
        waiter = client.jobs.submit(**submit_request(notebook_path, parameters, settings, run_name))
    try:
        return waiter.result(timeout=settings.timeout)
    except OperationFailed:
        return client.jobs.get_run(waiter.run_id)
    except TimeoutError:
        raise DbxmlError(f"Databricks run {waiter.run_id} of {notebook_path} did not end within {settings.timeout} "
                         f"(it stops itself at its own timeout); see it in the workspace's job runs.") from None


# %% [markdown]
# ## What comes back
#
# A finished run says how it ended; its output says what the notebook returned
# (`dbutils.notebook.exit`) or why it failed, and its export is the executed notebook as
# HTML (not ipynb, so the output cells cannot be copied back one by one). Output and
# export belong to the task's run, not to the submitted run around it.

# %%
#| export
@dataclass
class RunResult:
    "How a Databricks run of a notebook ended and what it returned."
    run_id: int
    task_run_id: int  # the notebook task's own run
    url: str | None  # the run's page in the workspace
    life_cycle_state: str | None  # e.g. `TERMINATED`
    result_state: str | None  # e.g. `SUCCESS`, `FAILED`
    state_message: str = ""
    exit_value: str | None = None  # what `dbutils.notebook.exit` returned
    error: str | None = None  # the remote error, if it failed
    error_trace: str | None = None  # its stack trace
    html: str | None = None  # the executed notebook, exported as HTML

    @property
    def succeeded(self) -> bool:
        "True when the notebook ran to its end."
        return self.result_state == RunResultState.SUCCESS.value

    def failure(self) -> str:
        "One line saying how the run failed, with the remote error and the run's page."
        error = f" Remote error: {_one_line(self.error)}." if self.error else ""
        return (f"Databricks run {self.run_id} ended {self.result_state or self.life_cycle_state}: "
                f"{self.state_message or 'no message'}.{error} See {self.url}")

def _value(state) -> str | None:
    "The value of an SDK enum, or None."
    return None if state is None else state.value

def run_result(client: WorkspaceClient, run: Run) -> RunResult:
    "The ending of `run`, with its notebook task's output and HTML export."
    task_run_id = run.tasks[0].run_id if run.tasks else run.run_id
    with _step(client, f"reading the output of run {run.run_id}"):
        output = client.jobs.get_run_output(task_run_id)
        export = client.jobs.export_run(task_run_id, views_to_export=ViewsToExport.CODE)
    state = run.state
    return RunResult(run_id=run.run_id, task_run_id=task_run_id, url=run.run_page_url,
                     life_cycle_state=_value(state and state.life_cycle_state),
                     result_state=_value(state and state.result_state), state_message=(state and state.state_message) or "",
                     exit_value=output.notebook_output.result if output.notebook_output else None,
                     error=output.error, error_trace=output.error_trace,
                     html=export.views[0].content if export.views else None)


# %% [markdown]
# ## Writing it back
#
# The output notebook gets the run in its metadata (`metadata.dbxml.databricks_run`),
# a short report as the last code cell's output, and the HTML export in a file next to
# it (`out.databricks.html` for `out.ipynb`), or embedded when there is no local output
# file. A failure becomes an error output on that cell, so papermill raises its own
# `PapermillExecutionError` (the message names the run page and the remote error) and
# marks the output notebook as failed, as it does when a local kernel fails.

# %%
#| export
def html_path_for(output_path: str | None) -> Path | None:
    "Where the HTML export of a run goes: next to a local output notebook, or None."
    if not output_path or output_path == "-" or "://" in str(output_path):
        return None
    return Path(output_path).with_suffix(".databricks.html")

def write_back(nb: nbformat.NotebookNode, result: RunResult,
               notebook_path: str,  # where the notebook was imported
               html_path: Path | None = None,  # where the HTML export was saved (None: embed it)
              ) -> nbformat.NotebookNode | None:
    "Record `result` in `nb`'s metadata and last code cell; returns that cell (None if `nb` has no code cell)."
    record = {**asdict(result), "notebook_path": notebook_path, "html_path": str(html_path) if html_path else None}
    del record["html"]
    nb.metadata["dbxml"] = nbformat.from_dict({**nb.metadata.get("dbxml", {}), "databricks_run": record})
    cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    if not cells:
        return None
    report = f"Ran on Databricks: run {result.run_id} ended {result.result_state or result.life_cycle_state}\n{result.url}\n"
    if result.exit_value is not None:
        report += f"exit value: {result.exit_value}\n"
    outputs = [nbformat.v4.new_output("stream", name="stdout", text=report)]
    if result.html and html_path is None:
        outputs.append(nbformat.v4.new_output("display_data", data={"text/html": result.html}))
    if not result.succeeded:
        traceback = [result.failure(), *(result.error_trace or "").splitlines()]
        outputs.append(nbformat.v4.new_output("error", ename="DatabricksRunFailed", evalue=result.failure(),
                                              traceback=traceback))
    cells[-1].outputs = outputs
    return cells[-1]


# %% [markdown]
# A run that failed, as the SDK returns it, written back into a two-cell notebook:

# %%
failed = RunResult(run_id=7, task_run_id=8, url="https://adb-1.azuredatabricks.net/#job/0/run/7",
                   life_cycle_state="TERMINATED", result_state="FAILED", state_message="Task notebook failed.",
                   error="ZeroDivisionError: division by zero", error_trace="Traceback ...\nZeroDivisionError",
                   html="<html>run 8</html>")
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A"), nbformat.v4.new_code_cell("1 / 0")])
cell = write_back(nb, failed, "/Workspace/Users/me/a")
test_eq([output.output_type for output in cell.outputs], ["stream", "display_data", "error"])
print(cell.outputs[-1].evalue)
assert "ZeroDivisionError" in cell.outputs[-1].evalue and failed.url in cell.outputs[-1].evalue
test_eq(nb.metadata.dbxml.databricks_run["result_state"], "FAILED")
test_eq(html_path_for("runs/out.ipynb"), Path("runs/out.databricks.html"))
test_eq(html_path_for("s3://bucket/out.ipynb"), None)

# %% [markdown]
# The `Run` the SDK returns maps onto `RunResult` through its enums:

# %%
run = Run(run_id=7, run_page_url=failed.url, state=RunState(life_cycle_state=RunLifeCycleState.TERMINATED,
                                                            result_state=RunResultState.SUCCESS))
test_eq((_value(run.state.life_cycle_state), _value(run.state.result_state)), ("TERMINATED", "SUCCESS"))


# %% [markdown]
# ## The engine
#
# papermill finds the engine through the `papermill.engine` entry point `databricks`
# that `setup.py` declares, and calls it with the notebook already parameterised (the
# values are also in `metadata.papermill.parameters`).
#
# papermill loads every engine's entry point while it is itself being imported. A module
# that imported papermill at its top would therefore import itself half-way (when it is
# the first to import papermill) and break papermill. So this module imports papermill
# only inside the engine's methods, and `DatabricksEngine` implements papermill's engine
# interface by handing papermill's own `Engine.execute_notebook` this class, instead of
# subclassing `Engine`.

# %%
#| export
class DatabricksEngine:
    "A papermill engine that runs the notebook as a one-time Databricks job run (`--engine databricks`)."

    @classmethod
    def execute_notebook(cls, nb, kernel_name, **kwargs):
        "papermill's `Engine.execute_notebook`: the notebook's execution state kept around `execute_managed_notebook`."
        from papermill.engines import Engine
        return Engine.execute_notebook.__func__(cls, nb, kernel_name, **kwargs)

    @classmethod
    def nb_kernel_name(cls, nb, name=None):
        "The kernel named in `nb` (papermill's default); the remote run does not use it."
        from papermill.utils import nb_kernel_name
        return nb_kernel_name(nb, name)

    @classmethod
    def nb_language(cls, nb, language=None):
        "The notebook's language (papermill's default)."
        from papermill.utils import nb_language
        return nb_language(nb, language)

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        "Import the parameterised notebook, run it on Databricks, and write the result back into `nb_man.nb`."
        settings = run_settings(kwargs)
        client = workspace_client(settings.profile, settings.host)
        user = check_auth(client)
        source = kwargs.get("input_path")
        name = Path(source).stem if isinstance(source, (str, Path)) else "notebook"
        path = f"{settings.folder or default_folder(user)}/{name}-{uuid.uuid4().hex[:8]}"
        import_notebook(client, nb_man.nb, path)
        parameters = dict(nb_man.nb.metadata.get("papermill", {}).get("parameters") or {})
        result = run_result(client, submit_notebook_run(client, path, parameters, settings, f"dbxml papermill: {name}"))
        html_path = html_path_for(nb_man.output_path)
        if html_path and result.html:
            html_path.write_text(result.html, encoding="utf-8")
        cell = write_back(nb_man.nb, result, path, html_path if result.html else None)
        if not result.succeeded:  # papermill raises on the error output; without a code cell, raise here
            if cell is None:
                raise DbxmlError(result.failure())
            nb_man.cell_exception(cell)


# %% [markdown]
# The entry point is what `papermill --engine databricks` uses:

# %%
from papermill.engines import papermill_engines

papermill_engines.register_entry_points()
test_eq(papermill_engines.get_engine("databricks").__module__, "dbxml.databricks")

# %% [markdown]
# Importing this module first, before anything has imported papermill, works:

# %%
import subprocess
import sys

subprocess.run([sys.executable, "-c", "import dbxml.databricks, papermill.engines as e; e.papermill_engines.get_engine('databricks')"],
               check=True)
