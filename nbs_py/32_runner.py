# %% [markdown]
# # The local runner
# > `dbxml run`: the bundle's job graph, executed on this machine by one of two executors:
# > papermill (a notebook per task, as on Databricks) or in-process (a function call per task).
#
# On Databricks, a job run executes each task's notebook on serverless or a cluster,
# keeps its output, and shows the run as a graph. `dbxml run` walks the same graph here,
# from the same definition (`dbxml.jobs`), with the same conditions, `run_if` rules and
# summary, and hands each notebook task to an executor:
#
# - the **papermill** executor, the default, runs the task's notebook in a fresh kernel,
#   as on Databricks;
# - the **in-process** executor (`dbxml run --in-process`) calls the task's function
#   ([the tasks](24_tasks.ipynb)) in this Python process, on this process's one Spark
#   session. It is what the tests, the examples and the benchmark's baseline use, with no
#   kernels, no notebooks written and one JVM. Both call the same functions, since a
#   pipeline notebook is its parameters cell and one call.
#
# The papermill executor:
#
# - **One Spark per run.** The runner starts one local Spark Connect server with Delta
#   for the target's lakehouse, and every task's notebook connects to it (through the
#   `DBXML_SPARK` and `DBXML_SPARK_REMOTE` overrides of the target). One JVM serves the
#   whole run, and every notebook runs through Spark Connect, the interface Databricks
#   serverless speaks.
# - **One kernel per task, started early.** Each task runs in a fresh Python kernel, as
#   on Databricks; the next one is started (and imports the package) while the current
#   task runs, so start-up costs overlap with work.
# - **Everything kept.** Each executed notebook lands in the target's runs folder, is
#   logged to MLflow as an artifact of the run, and a failed task keeps its partial
#   notebook with the error in the failing cell.
#
# Parameters arrive as strings (the command line, the job's defaults) and are converted
# to the types of the notebook's `parameters` cell with `dbxml.params.coerce`, the
# conversion the notebook itself applies to Databricks widgets.

# %%
#| default_exp runner

# %%
#| export
from __future__ import annotations

import ast
import contextlib
import json
import os
import socket
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import papermill
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from papermill.exceptions import PapermillExecutionError

from dbxml.config import DbxmlError, Target
from dbxml.jobs import Job, Task, bundle_root, condition_holds, fill_references, load_job, task_order
from dbxml.params import coerce, render_value, task_values
from dbxml.sources import parse_months
from dbxml.spark import connect_server, connect_spark, get_spark

# %%
#| hide
from fastcore.test import test_eq, test_fail

from dbxml.config import load_target


# %% [markdown]
# ## Parameters
#
# `-p key=value` sets a job parameter. A month parameter may name a range,
# `2013-01..2013-12`: the runner then runs the graph once per month, in order, which is
# what a monthly schedule would have done. Without one, the job's default `next` applies:
# one run, of the month the lakehouse task picks ([the watermark](16_watermark.ipynb)),
# and the summary names that month.

# %%
#| export
def parse_assignments(pairs: list[str],  # `key=value` strings from the command line
                     ) -> dict[str, str]:
    "The `key=value` pairs as a dictionary; a `DbxmlError` for a pair without `=`."
    found = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise DbxmlError(f"parameter {pair!r} is not of the form key=value, for example month=2013-05.")
        found[key.strip()] = value.strip()
    return found

def planned_runs(job: Job,  # the job to run
                 overrides: dict[str, str],  # `-p` values
                ) -> list[dict[str, str]]:
    "The job parameters of each run: the job's defaults with `overrides`, one run per month of a month range."
    unknown = sorted(set(overrides) - set(job.parameters))
    if unknown:
        raise DbxmlError(f"job {job.name} has no parameter {', '.join(unknown)}; "
                         f"its parameters are: {', '.join(job.parameters)}.")
    parameters = job.parameters | overrides
    if ".." not in parameters.get("month", ""):
        return [parameters]
    return [parameters | {"month": month} for month in parse_months(parameters["month"])]


# %%
job = load_job("monthly", load_target("local"))
test_eq(parse_assignments(["month=2013-05", "window = 2"]), {"month": "2013-05", "window": "2"})
test_eq([run["month"] for run in planned_runs(job, {"month": "2013-11..2014-01"})], ["2013-11", "2013-12", "2014-01"])
test_eq(planned_runs(job, {})[0], job.parameters)
test_fail(lambda: planned_runs(job, {"monht": "2013-05"}), contains="has no parameter monht")
test_fail(lambda: parse_assignments(["2013-05"]), contains="not of the form key=value")


# %% [markdown]
# A notebook's parameters and their defaults come from its `parameters` cell, read by
# papermill's own inspection; a task that passes a parameter the notebook does not
# declare is an error before anything runs.

# %%
#| export
def notebook_defaults(notebook: Path) -> dict:
    "The parameters a notebook declares, with their default values."
    declared = papermill.inspect_notebook(str(notebook))
    return {name: ast.literal_eval(spec["default"]) for name, spec in declared.items()}

def task_parameters(task: Task,  # a notebook task
                    job_parameters: dict[str, str],  # this run's job parameters
                    values: dict[str, dict[str, str]],  # task values set so far, by task
                   ) -> dict:
    "The task's parameters for this run: references filled in, typed like the notebook's defaults."
    defaults = notebook_defaults(task.notebook)
    unknown = sorted(set(task.parameters) - set(defaults))
    if unknown:
        raise DbxmlError(f"task {task.key} passes {', '.join(unknown)}, which {task.notebook.name} does not declare "
                         f"in its parameters cell ({', '.join(defaults)}).")
    filled = {name: fill_references(text, job_parameters, values) for name, text in task.parameters.items()}
    try:
        return {name: coerce(name, text, defaults[name]) for name, text in filled.items()}
    except DbxmlError as error:
        raise DbxmlError(f"task {task.key}: {error}") from None


# %%
test_eq(notebook_defaults(job.task("monitor").notebook), {"target_name": "local", "month": "2013-01", "window": 3})
lakehouse_chose = {"lakehouse": {"month": "2013-05"}}  # the month the lakehouse task resolved
test_eq(task_parameters(job.task("monitor"), {"month": "next", "window": "2"}, lakehouse_chose),
        {"target_name": "local", "month": "2013-05", "window": 2})
test_fail(lambda: task_parameters(job.task("monitor"), {"month": "next", "window": "two"}, lakehouse_chose),
          contains="task monitor: parameter window: expected an integer, got 'two'")


# %% [markdown]
# ## Kernels
#
# Importing the package (Spark Connect, MLflow, scikit-learn) takes a few seconds in a
# new Python process. `KernelPool` keeps one kernel started ahead, already past those
# imports, and starts the next while a task runs. Each task still gets its own process.
# Kernels talk over local sockets and write their own output to a log file in the run
# folder.
#
# A kernel runs the runner's own interpreter. Jupyter looks for a kernel named
# `python3` in the user's folders first (`~/.local/share/jupyter/kernels`), where a
# kernel once installed for another Python would take the task; `runner_kernel` skips
# every installed kernel spec and uses ipykernel's built-in one, which starts
# `sys.executable`.

# %%
#| export
def runner_kernel() -> KernelManager:
    "A kernel manager for a task: ipykernel's built-in spec, so the kernel runs this interpreter."
    return KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))


# %%
test_eq(runner_kernel().kernel_spec.argv[0], sys.executable)

# %%
#| export
WARM_IMPORTS = "import dbxml.tasks, dbxml.params, pyspark.sql.connect.session"

class KernelPool:
    "Python kernels for the tasks of a run, one started ahead of need."

    def __init__(self, environ: dict[str, str],  # the kernels' environment
                 cwd: Path,  # their working folder
                 log: Path,  # where their own output goes
                ):
        self.environ, self.cwd, self.log = environ, cwd, log
        self.started: list[KernelManager] = []
        self._next: KernelManager | None = None
        self._taking = threading.Lock()  # an overlapped backfill takes kernels from two threads (`run_plans`)
        self._ready = threading.Thread(target=self._start_next)
        self._ready.start()

    def _start_next(self) -> None:
        manager = runner_kernel()
        with open(self.log, "a") as output:
            manager.start_kernel(env=self.environ, cwd=str(self.cwd), stdout=output, stderr=output)
        self.started.append(manager)
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            client.execute_interactive(WARM_IMPORTS, timeout=300, output_hook=lambda message: None)
        finally:
            client.stop_channels()
        self._next = manager

    def take(self) -> KernelManager:
        "A started kernel for the next task; another starts in the background."
        with self._taking:
            self._ready.join()
            if self._next is None or not self._next.is_alive():
                raise DbxmlError(f"a Python kernel for the next task did not start; its output is in {self.log}.")
            manager, self._next = self._next, None
            self._ready = threading.Thread(target=self._start_next)
            self._ready.start()
            return manager

    def close(self) -> None:
        "Stop every kernel this pool started."
        with self._taking:
            self._ready.join()
        for manager in self.started:
            with contextlib.suppress(Exception):
                manager.shutdown_kernel(now=True)


# %% [markdown]
# ## Running one task
#
# A condition task is judged in place; a notebook task goes to the executor.
# `TaskResult` records what happened. The papermill executor runs the notebook in a
# kernel from the pool and reads the task values back from the executed notebook; the
# in-process executor calls the task's function, found by the notebook's name, and its
# return value is the task values. Both get the parameters typed the same way (from the
# notebook's `parameters` cell), and both turn a failure into one line that says where.

# %%
#| export
SUCCESS, FAILED, EXCLUDED, UPSTREAM_FAILED = "SUCCESS", "FAILED", "EXCLUDED", "UPSTREAM_FAILED"

@dataclass
class TaskResult:
    "What happened to one task in one run."
    run: str  # the run's label, e.g. the month
    task: str  # the task key
    status: str  # SUCCESS, FAILED, EXCLUDED (a condition said no) or UPSTREAM_FAILED
    seconds: float = 0.0
    notebook: Path | None = None  # the executed (or partial) notebook; in-process, a failure's traceback
    values: dict = field(default_factory=dict)  # task values it set (a condition: its outcome)
    error: str = ""  # for a failure: where and why

def cell_summary(source: str) -> str:
    "The first line of a cell's code, shortened, to name the cell in a message."
    lines = [line for line in source.splitlines() if line.strip() and not line.startswith("#|")]
    first = lines[0] if lines else ""
    return first if len(first) <= 70 else first[:67] + "..."


# %% [markdown]
# The papermill executor runs a task's notebook with its parameters; a failing cell
# becomes one line naming the cell by its first line of code:

# %%
#| export
def execute_notebook_task(task: Task, parameters: dict, output: Path, kernel: KernelManager,
                          on_cell=None,  # called with (cell number, cell count, cell) as each cell starts
                         ) -> tuple[dict, str]:
    "Run the task's notebook with `parameters` into `output`; returns its task values and an error ('' if none)."
    def cell_started(cell, cell_index):
        if on_cell:
            on_cell(cell_index + 1, cell_count, cell)
    cell_count = len(json.loads(task.notebook.read_text())["cells"]) + 1  # and papermill's injected cell
    try:
        executed = papermill.execute_notebook(str(task.notebook), str(output), parameters=parameters,
                                              kernel_name="python3", km=kernel, progress_bar=False,
                                              on_cell_start=cell_started)
    except PapermillExecutionError as error:
        return {}, (f"cell {error.cell_index + 1} (`{cell_summary(error.source)}`) raised {error.ename}: "
                    f"{error.evalue}")
    return task_values(executed), ""


# %% [markdown]
# Each task gets a fresh kernel from the pool, shut down after it, so no state leaks
# from one task to the next (as on Databricks, where each task is its own notebook run):

# %%
#| export
class PapermillExecutor:
    "Each notebook task in a fresh kernel from `pool`, with papermill; the executed notebook is kept."

    def __init__(self, pool: KernelPool):
        self.pool = pool

    def run(self, task: Task, parameters: dict,
            folder: Path,  # where the run's evidence goes
            on_cell=None,  # see `execute_notebook_task`
           ) -> tuple[dict, str, Path]:
        "The task's values, its error ('' if none), and the executed (or partial) notebook."
        output = folder / task.notebook.name
        kernel = self.pool.take()
        try:
            values, error = execute_notebook_task(task, parameters, output, kernel, on_cell)
        finally:
            kernel.shutdown_kernel(now=True)
        return values, error, output


# %%
#| export
class InProcessExecutor:
    "Each notebook task as a call of its function in this process: `functions[notebook name]`, the target for `target_name`."

    def __init__(self, target: Target | None = None,  # what a `target_name` parameter stands for
                 functions: dict | None = None,  # notebook name -> function (default: `dbxml.tasks.TASKS`)
                ):
        if functions is None:
            from dbxml.tasks import TASKS  # only here: the papermill executor's process never needs the stages

            functions = TASKS
        self.target, self.functions = target, functions

    def run(self, task: Task, parameters: dict,
            folder: Path,  # where a failure's traceback goes
            on_cell=None,  # unused: there are no cells
           ) -> tuple[dict, str, Path | None]:
        "The function's task values, its error ('' if none), and for a failure the file with its traceback."
        function = self.functions.get(task.notebook.stem)
        if function is None:
            return {}, f"no task function for {task.notebook.name}", None
        arguments = {name: value for name, value in parameters.items() if name != "target_name"}
        if "target_name" in parameters:
            arguments = {"target": self.target} | arguments
        try:
            return dict(function(**arguments) or {}), "", None
        except Exception as error:  # a task failure, as a failing cell is one in a notebook
            trace = folder / f"{task.key}.traceback.txt"
            trace.write_text(traceback.format_exc())
            return {}, f"{function.__name__} raised {type(error).__name__}: {error}", trace


# %% [markdown]
# ## Running the graph
#
# Tasks run in dependency order. By default (`run_if: ALL_SUCCESS`) a task runs when
# every task it depends on succeeded (with the outcome it asks for, after a condition);
# after a failure its dependants are `UPSTREAM_FAILED`, and tasks behind a condition
# that said no are `EXCLUDED`, as on Databricks. `NONE_FAILED` runs a task when none of
# its dependencies failed, even if some were excluded, and `ALL_DONE` whatever they did;
# as on Databricks, a task whose dependencies were all excluded is excluded too.

# %%
#| export
def dependency_state(dependency, results: dict[str, TaskResult]) -> str:
    "`SUCCESS`, `FAILED` or `EXCLUDED`: what the task `dependency` names did, as the task after it sees it."
    upstream = results[dependency.task_key]
    if upstream.status in (FAILED, UPSTREAM_FAILED):
        return FAILED
    if upstream.status == EXCLUDED:
        return EXCLUDED
    if dependency.outcome is not None and upstream.values.get("outcome") != dependency.outcome:
        return EXCLUDED  # a condition that said the other thing
    return SUCCESS

def blocked_by(task: Task, results: dict[str, TaskResult]) -> str | None:
    "Why `task` cannot run given the results so far (`UPSTREAM_FAILED` or `EXCLUDED`), or None if it can."
    states = [dependency_state(dependency, results) for dependency in task.depends_on]
    if states and all(state == EXCLUDED for state in states):
        return EXCLUDED
    if FAILED in states and task.run_if != "ALL_DONE":
        return UPSTREAM_FAILED
    if EXCLUDED in states and task.run_if == "ALL_SUCCESS":
        return EXCLUDED
    return None


# %% [markdown]
# `run_task` runs one task of a run: a condition is judged in place from the values
# before it; every other task goes to the executor, with its parameters filled and
# typed. `run_graph` walks the job once, in order, and runs each task with it.

# %%
#| export
def run_task(task: Task, job_parameters: dict[str, str],
             results: dict[str, TaskResult],  # this run's results so far, by task
             rendered: dict[str, dict[str, str]],  # their task values as text, by task
             folder: Path, executor: PapermillExecutor | InProcessExecutor,
             label: str = "",  # the run's label, e.g. the month
             progress=None,  # see `run_graph`
            ) -> TaskResult:
    "What `task` does in this run, given the results before it."
    started = time.perf_counter()
    result = TaskResult(label, task.key, blocked_by(task, results) or SUCCESS)
    if result.status == SUCCESS and task.condition:
        left, op, right = (fill_references(part, job_parameters, rendered) if index != 1 else part
                           for index, part in enumerate(task.condition))
        result.values = {"outcome": render_value(condition_holds(left, op, right))}
    elif result.status == SUCCESS:
        if progress:
            progress.task_started(label, task.key)
        try:
            parameters = task_parameters(task, job_parameters, rendered)
            result.values, result.error, result.notebook = executor.run(
                task, parameters, folder, progress and progress.cell_started)
        except DbxmlError as error:
            result.error = str(error)
        result.status = FAILED if result.error else SUCCESS
    result.seconds = time.perf_counter() - started
    return result

def root_tasks(job: Job) -> list[Task]:
    "The notebook tasks that wait for no other task (the monthly job's: `lakehouse`)."
    return [task for task in task_order(job) if not task.depends_on and task.notebook is not None]

def run_roots(job: Job, job_parameters: dict[str, str], folder: Path,
              executor: PapermillExecutor | InProcessExecutor, label: str = "",
             ) -> dict[str, TaskResult]:
    "Run only the root tasks of one run, silently: their results, for `run_graph(..., ahead=...)`."
    folder.mkdir(parents=True, exist_ok=True)
    return {task.key: run_task(task, job_parameters, {}, {}, folder, executor, label) for task in root_tasks(job)}

def run_graph(job: Job, job_parameters: dict[str, str],
              folder: Path,  # where this run's evidence goes (executed notebooks, tracebacks)
              executor: PapermillExecutor | InProcessExecutor,
              label: str = "",  # the run's label in results and progress, e.g. the month
              progress=None,  # called with each finished `TaskResult` (and `on_cell` events, see `Progress`)
              ahead: dict[str, TaskResult] | None = None,  # this run's root tasks, already run (`run_roots`)
              roots_done=None,  # called once every root task of this run has its result
             ) -> list[TaskResult]:
    "Run every task of `job` once, in order; returns a result per task."
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, TaskResult] = {}
    rendered: dict[str, dict[str, str]] = {}
    roots = {task.key for task in root_tasks(job)}
    for task in task_order(job):
        if ahead and task.key in ahead:
            result = ahead[task.key]
        else:
            result = run_task(task, job_parameters, results, rendered, folder, executor, label, progress)
        results[task.key] = result
        rendered[task.key] = {key: render_value(value) for key, value in result.values.items()}
        if progress:
            progress.task_finished(result)
        if roots_done and roots <= set(results):
            roots_done()
            roots_done = None
    return list(results.values())


# %%
from dbxml.jobs import Dependency
after = {"train": TaskResult("", "train", EXCLUDED), "monitor": TaskResult("", "monitor", SUCCESS),
         "score": TaskResult("", "score", FAILED)}
finish = Task("record", (Dependency("monitor"), Dependency("train")), run_if="NONE_FAILED")
test_eq(blocked_by(finish, after), None)  # train was excluded (no retrain), nothing failed: it runs
test_eq(blocked_by(Task("record", finish.depends_on), after), EXCLUDED)  # ALL_SUCCESS wants train too
test_eq(blocked_by(Task("record", (Dependency("train"),), run_if="NONE_FAILED"), after), EXCLUDED)  # all excluded
test_eq(blocked_by(Task("record", (Dependency("score"), Dependency("monitor")), run_if="NONE_FAILED"), after),
        UPSTREAM_FAILED)
test_eq(blocked_by(Task("cleanup", (Dependency("score"),), run_if="ALL_DONE"), after), None)

# %% [markdown]
# ## A toy job, end to end
#
# Four small tasks show the graph at work: `measure` sets values, the condition
# `decide` reads one, `act` runs only when it says yes and divides by the job parameter
# `divisor`, and `finish` (`run_if: NONE_FAILED`, like the monthly job's `record_month`)
# runs unless a task before it failed. Each task has a notebook, whose `parameters` cell
# types the parameters, and a function; the in-process executor calls the functions.
# (`tests/test_jobs.py` runs the same toy job's notebooks with papermill.)

# %%
#| hide
import tempfile

import nbformat


def toy_notebook(folder: Path, name: str, parameters: str) -> Path:
    "A task notebook that only declares its parameters (the in-process executor calls the function instead)."
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    nbformat.write(notebook, folder / f"{name}.ipynb")
    return folder / f"{name}.ipynb"


# %%
toys = Path(tempfile.mkdtemp(prefix="dbxml-toy-"))
toy_job = Job("toy", "toy", {"size": "1", "divisor": "1"}, (
    Task("measure", notebook=toy_notebook(toys, "measure", "size = 1"), parameters={"size": "{{job.parameters.size}}"}),
    Task("decide", (Dependency("measure"),), condition=("{{tasks.measure.values.big}}", "EQUAL_TO", "true")),
    Task("act", (Dependency("decide", "true"),), notebook=toy_notebook(toys, "act", "size = 0\ndivisor = 1"),
         parameters={"size": "{{tasks.measure.values.size}}", "divisor": "{{job.parameters.divisor}}"}),
    Task("finish", (Dependency("measure"), Dependency("act")), notebook=toy_notebook(toys, "finish", "size = 0"),
         parameters={"size": "{{tasks.measure.values.size}}"}, run_if="NONE_FAILED"),
))
toy_functions = {"measure": lambda size: {"big": size > 10, "size": size},
                 "act": lambda size, divisor: {"rows": size // divisor},
                 "finish": lambda size: {"finished": size}}
in_process = InProcessExecutor(functions=toy_functions)

def toy_run(**parameters):
    return {result.task: (result.status, result.values)
            for result in run_graph(toy_job, parameters, toys / "run", in_process)}


# %% [markdown]
# A big size: the condition says yes, and `act` gets `size` from `measure`'s values,
# typed as its notebook declares it (an integer), and the divisor from the job:

# %%
test_eq(toy_run(size="42", divisor="4"), {"measure": (SUCCESS, {"big": True, "size": 42}),
                                          "decide": (SUCCESS, {"outcome": "true"}),
                                          "act": (SUCCESS, {"rows": 10}), "finish": (SUCCESS, {"finished": 42})})

# %% [markdown]
# A small one: the condition says no, `act` is excluded, and `finish` still runs,
# since nothing failed:

# %%
test_eq({task: status for task, (status, _) in toy_run(size="3", divisor="1").items()},
        {"measure": SUCCESS, "decide": SUCCESS, "act": EXCLUDED, "finish": SUCCESS})

# %% [markdown]
# A failing task is one line that says what raised, its traceback is kept, and the
# tasks after it do not run; a parameter of the wrong type fails before the task starts:

# %%
failed = run_graph(toy_job, {"size": "42", "divisor": "0"}, toys / "failed", in_process)
test_eq([result.status for result in failed], [SUCCESS, SUCCESS, FAILED, UPSTREAM_FAILED])
test_eq(failed[2].error, "<lambda> raised ZeroDivisionError: integer division or modulo by zero")
assert "ZeroDivisionError" in failed[2].notebook.read_text()
wrong = run_graph(toy_job, {"size": "many", "divisor": "1"}, toys / "wrong", in_process)
test_eq(wrong[0].error, "task measure: parameter size: expected an integer, got 'many'.")

# %% [markdown]
# A backfill runs the graph once per month, and the next month's root tasks need
# nothing from this month's later ones. `run_roots` runs only the roots (here
# `measure`), and `run_graph` takes their results as `ahead`; `roots_done` is the moment
# this run's roots are done, when `run_job` starts the next run's. The order the
# functions ran in shows both:

# %%
ran = []
def logged(name, function):
    "`function`, noting its name in `ran` when called."
    def call(**arguments):
        ran.append(name)
        return function(**arguments)
    return call
logging = InProcessExecutor(functions={name: logged(name, function) for name, function in toy_functions.items()})
test_eq(set(run_roots(toy_job, {"size": "42", "divisor": "4"}, toys / "early", logging)), {"measure"})
ahead = run_roots(toy_job, {"size": "42", "divisor": "4"}, toys / "early", logging)
overlapped = run_graph(toy_job, {"size": "42", "divisor": "4"}, toys / "early", logging, ahead=ahead,
                       roots_done=lambda: ran.append("the next run's roots"))
test_eq(ran, ["measure", "measure", "the next run's roots", "act", "finish"])
test_eq({result.task: (result.status, result.values) for result in overlapped}, toy_run(size="42", divisor="4"))

# %% [markdown]
# ## Progress and the summary
#
# While a run goes, one line per finished task; on a terminal, the running task and cell
# are shown in place. At the end, a table with a row per task and run, and where to look
# next.

# %%
#| export
RESULT_COLUMNS = ("run", "task", "status", "seconds", "rows", "model", "metrics")
QUIET_VALUES = ("rows", "model_version", "reason", "outcome", "retrain", "month")  # shown elsewhere in the row

def result_row(result: TaskResult) -> dict:
    "One row of the summary: what a task did, its rows, the model version it touched and its metrics."
    values = result.values
    metrics = ", ".join(f"{key} {value}" for key, value in values.items() if key not in QUIET_VALUES)
    if "outcome" in values:
        metrics = f"outcome {values['outcome']}"
    if "retrain" in values:
        metrics = ", ".join(filter(None, [f"retrain {render_value(values['retrain'])} ({values['reason']})", metrics]))
    return {"run": result.run, "task": result.task, "status": result.status, "seconds": f"{result.seconds:.1f}",
            "rows": values.get("rows", ""), "model": values.get("model_version") or "", "metrics": metrics}

def summary_table(results: list[TaskResult]) -> str:
    "The results as an aligned text table."
    rows = [result_row(result) for result in results]
    widths = {column: max([len(column)] + [len(str(row[column])) for row in rows]) for column in RESULT_COLUMNS[:-1]}
    def line(values):
        return "  ".join(f"{values[column]!s:<{widths[column]}}" for column in RESULT_COLUMNS[:-1]) + \
            "  " + str(values["metrics"])
    return "\n".join([line({column: column for column in RESULT_COLUMNS})] + [line(row) for row in rows])


# %% [markdown]
# A failure names what it left behind, and `Progress` reports as the run goes:

# %%
#| export
def evidence_name(path: Path) -> str:
    "What a failed task left: its partial notebook, or (in-process) its traceback."
    return "partial notebook" if path.suffix == ".ipynb" else "traceback"

class Progress:
    "Prints a line per finished task; on a terminal, the running task and cell in place."

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.current = ""

    def task_started(self, label: str, task: str) -> None:
        self.current = f"{label} {task}".strip()
        if self.live:
            self.stream.write(f"\r\033[K{self.current}: starting")
            self.stream.flush()

    def cell_started(self, number: int, count: int, cell) -> None:
        if self.live:
            self.stream.write(f"\r\033[K{self.current}: cell {number}/{count} {cell_summary(cell.source)}")
            self.stream.flush()

    def months_skipped(self, months: list[str]) -> None:
        self.stream.write(f"already processed, skipped: {', '.join(months)} (dbxml run --again runs them)\n")
        self.stream.flush()

    def task_finished(self, result: TaskResult) -> None:
        row = result_row(result)
        text = f"{row['run']} {row['task']}: {row['status'].lower()} in {row['seconds']} s"
        details = [f"{key} {row[key]}" for key in ("rows", "model") if row[key] != ""] + [row["metrics"]]
        text += "".join(f"; {detail}" for detail in details if detail)
        if result.error:
            text += f"\n  {result.task} failed at {result.error}"
            if result.notebook:
                text += f"\n  {evidence_name(result.notebook)}: {result.notebook}"
        self.stream.write(("\r\033[K" if self.live else "") + text + "\n")
        self.stream.flush()


# %%
finished = [TaskResult("2013-05", "monitor", SUCCESS, 3.2, values={"retrain": True, "reason": "first model"}),
            TaskResult("2013-05", "retrain_needed", SUCCESS, 0.0, values={"outcome": "true"}),
            TaskResult("2013-05", "train", SUCCESS, 20.5, values={"model_version": "1", "roc_auc": 0.7}),
            TaskResult("2013-05", "promote", UPSTREAM_FAILED)]
print(summary_table(finished))
test_eq(result_row(finished[2])["model"], "1")
test_eq(result_row(finished[0])["metrics"], "retrain true (first model)")

# %% [markdown]
# ## Logging runs to MLflow
#
# Each run of the graph is an MLflow run in the target's `/Shared/dbxml/jobs`
# experiment: the job parameters, a duration per task, the summary as a table, and
# every executed notebook as an artifact, so a run's evidence lives where its models do.

# %%
#| export
JOBS_EXPERIMENT = "/Shared/dbxml/jobs"

def log_run(target: Target, job: Job, job_parameters: dict[str, str], results: list[TaskResult],
            folder: Path,  # the run's notebooks
           ) -> str:
    "Record one run of the graph in MLflow; returns the MLflow run id."
    import mlflow

    from dbxml.tracking import ensure_experiment

    mlflow.set_experiment(experiment_id=ensure_experiment(target, JOBS_EXPERIMENT))  # artifacts under the home
    failed = any(result.status == FAILED for result in results)
    label = results[0].run if results else ""
    with mlflow.start_run(run_name=f"{job.name} {label}".strip(), tags={"dbxml.job": job.name,
                                                                         "dbxml.target": target.name}) as run:
        mlflow.log_params(job_parameters)
        mlflow.log_metrics({f"{result.task}_seconds": result.seconds for result in results if result.notebook})
        mlflow.log_dict({"tasks": [result_row(result) | {"error": result.error} for result in results]},
                        "summary.json")
        for notebook in sorted(folder.glob("*.ipynb")):
            mlflow.log_artifact(str(notebook), "notebooks")
    if failed:
        mlflow.MlflowClient().set_terminated(run.info.run_id, "FAILED")
    return run.info.run_id


# %% [markdown]
# ## `run_job`
#
# The whole command: load the job for the target, plan the runs, start one Spark
# Connect server and the kernel pool (or, in-process, use this process's Spark), run the
# graph for each planned run (stopping at the first failure), log each run, and stop
# everything on the way out.

# %%
#| export
@dataclass
class JobRun:
    "The outcome of `run_job`."
    job: Job
    folder: Path  # the runs folder of this invocation
    results: list[TaskResult]
    mlflow_runs: list[str]
    profiles: list = field(default_factory=list)  # `dbxml.profile.TaskProfile`s, when the run was profiled
    skipped: list[str] = field(default_factory=list)  # months not run: the watermark holds them

    @property
    def failed(self) -> list[TaskResult]:
        "The tasks that failed."
        return [result for result in self.results if result.status == FAILED]


# %% [markdown]
# The notebooks of a papermill run reach Spark over Spark Connect: the target's own
# server, or one `run_job` starts on a free port for the run.

# %%
#| export
def free_port() -> int:
    "A TCP port nothing listens on now."
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]

@contextlib.contextmanager
def run_spark(target: Target):
    "The Spark Connect URL the run's notebooks use: the target's own server, or one started for this run."
    if target.spark == "connect":
        yield target.spark_remote
        return
    with connect_server(target, free_port()) as remote:
        yield remote


# %% [markdown]
# A month the watermark holds was processed by a run that completed: running it again
# rebuilds nothing (every stage finds its inputs unchanged) but still scores, monitors
# and decides again, which for a year is most of a first run's time. So a local run of
# the monthly job skips the months `processed_months` already holds, and says so;
# `again=True` (`dbxml run --again`) runs them anyway. Only a job that records the
# watermark skips: a job without the `record_month` task never completes a month. The
# job graph itself is unchanged, so a backfill of a month on Databricks runs it again,
# as Databricks' own `month=YYYY-MM` run would.

# %%
#| export
def records_watermark(job: Job) -> bool:
    "Whether `job` records the months it completes (it has the `record_month` task)."
    return any(task.notebook is not None and task.notebook.stem == "record_month" for task in job.tasks)

def unprocessed(plans: list[dict],  # `planned_runs` output
                processed: list[str],  # months the watermark holds
               ) -> tuple[list[dict], list[str]]:
    "The plans still to run, and the months skipped because the watermark holds them (`next` is never skipped)."
    done = set(processed)
    return ([plan for plan in plans if plan.get("month") not in done],
            [plan["month"] for plan in plans if plan.get("month") in done])


# %%
plans = [{"month": "2013-01", "window": "3"}, {"month": "2013-02", "window": "3"}, {"month": "next"}]
test_eq(unprocessed(plans, ["2013-01"]), ([plans[1], plans[2]], ["2013-01"]))
test_eq(unprocessed(plans, []), (plans, []))
test_eq(records_watermark(job), True)


# %% [markdown]
# **A backfill can overlap its months** (`dbxml run --overlap`). In the monthly job only
# `lakehouse` is a root task, and a month's `lakehouse` reads nothing that the month
# before it writes after its own `lakehouse`: it reads its landed files, the dimensions
# and the earlier months' tables, which the earlier `lakehouse` finished. Score,
# monitor, train and promote read only their own month's rows (the months before it,
# for training) at a Delta version they pin, and write tables `lakehouse` never reads.
# So with `overlap`, month N+1's `lakehouse` starts as soon as month N's has finished,
# in its own kernel, while month N scores, monitors and trains; month N+1's other tasks
# still wait for month N's run to end. Every run's graph is the bundle's, task for task;
# only the start of the next run's root moves earlier. On Databricks the same backfill
# is one queued run per month (`max_concurrent_runs: 1`), one after another, which is
# what `dbxml run` does by default. The tables and models are the same either way
# (`tests/benchmarks/bench_run.py` compares the two runs' summaries); what can differ is
# a Delta version that a model or a prediction records, since with the overlap the
# version it pinned may also hold the next month's rows (it reads only its own months).
#
# It is not the default because on 2 cores it gains nothing: a run one month after
# another already keeps about 1.65 of the 2 cores busy (the JVM's compiler and
# collector threads, the next kernel starting), so the overlapped tasks take each
# other's CPU. Over January to March, the overlapped run took 206 s and the sequential
# one 196 s; February's training took 35 s beside March's lakehouse task, where it took
# 8 s alone. It is for a machine with cores to spare; it has not been measured on one.
#
# Only the papermill executor overlaps: each task has its own kernel there, while the
# in-process executor shares one Spark session and MLflow's active run in one process.
# A `month=next` run is one run, so it never overlaps; it could not, since the next
# month is the one the watermark names once this month is recorded.

# %%
#| export
def run_place(folder: Path, plan: dict) -> tuple[str, Path]:
    "A planned run's label (its month) and the folder its notebooks go to."
    label = plan.get("month", "")
    return label, (folder / label if label else folder)

def run_plans(job: Job, plans: list[dict],  # `planned_runs` output
              folder: Path,  # the invocation's runs folder; each month's run gets a folder in it
              executor: PapermillExecutor | InProcessExecutor,
              progress=None,  # see `run_graph`
              overlap: bool = False,  # start each run's root tasks as soon as the run before has finished its own
              finished=None,  # called with (plan, the run's results, its folder) as each run ends
             ) -> list[TaskResult]:
    "Run the graph once per plan, stopping after a run in which a task failed; returns every task's result."
    every: list[TaskResult] = []
    early: list[Future] = []  # the next run's root tasks, once started
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbxml-ahead") as background:
        for index, plan in enumerate(plans):
            label, run_folder = run_place(folder, plan)
            ahead = early.pop().result() if early else None
            following = plans[index + 1] if overlap and index + 1 < len(plans) else None

            def start_following(following=following):
                following_label, following_folder = run_place(folder, following)
                early.append(background.submit(run_roots, job, following, following_folder, executor, following_label))
            results = run_graph(job, plan, run_folder, executor, label, progress, ahead,
                                start_following if following else None)
            every += results
            if finished:
                finished(plan, results, run_folder)
            if any(result.status == FAILED for result in results):
                break
        for result in early.pop().result().values() if early else []:  # started before the failure: reported
            every.append(result)
            if progress:
                progress.task_finished(result)
    return every


# %% [markdown]
# The toy job over three "months", overlapped: the second month's `act` divides by
# zero, so the third month's run stops at its root, `measure`, which had already
# started. It is reported with the rest, and nothing after it ran:

# %%
backfill = [{"month": "m1", "size": "42", "divisor": "4"}, {"month": "m2", "size": "42", "divisor": "0"},
            {"month": "m3", "size": "42", "divisor": "2"}]
ran.clear()
ended = []
every = run_plans(toy_job, backfill, toys / "backfill", logging, overlap=True,
                  finished=lambda plan, results, where: ended.append(plan["month"]))
test_eq([(result.run, result.task, result.status) for result in every[4:]],
        [("m2", "measure", SUCCESS), ("m2", "decide", SUCCESS), ("m2", "act", FAILED), ("m2", "finish", UPSTREAM_FAILED),
         ("m3", "measure", SUCCESS)])
test_eq((sorted(ran), ended), (["act", "act", "finish", "measure", "measure", "measure"], ["m1", "m2"]))
test_eq(len(run_plans(toy_job, backfill, toys / "one-by-one", logging)), 8)  # not overlapped: m3 never starts



# %% [markdown]
# `run_job` puts it together: one Spark for all the planned runs (papermill's server, or
# this process's own), the months already processed set aside, one executor (the
# kernels, this process's Spark, or that Spark measured), then one graph walk and one
# MLflow run per planned run, stopping at the first failure.

# %%
#| export
def run_job(target: Target,  # a local target (`local` or `connect`)
            job_name: str = "monthly",  # a job of the bundle
            overrides: dict[str, str] | None = None,  # job parameters, e.g. `{"month": "2013-01..2013-12"}`
            progress: Progress | None = None,
            root: Path | None = None,  # the bundle's folder (default: found from the working folder)
            in_process: bool = False,  # call the task functions in this process instead of running notebooks
            profile: bool = False,  # measure each task (in process, on a `local` target): `JobRun.profiles`
            again: bool = False,  # run months the watermark already holds (default: skip them, see `unprocessed`)
            overlap: bool = False,  # papermill: start each month's lakehouse task while the month before it runs on
           ) -> JobRun:
    "Run the job's graph for each planned run, on one Spark; returns every task's result."
    if target.spark == "databricks":
        raise DbxmlError(f"target {target.name!r} runs on Databricks: deploy the bundle and run the job there "
                         f"(databricks bundle deploy -t {target.name} && databricks bundle run {job_name} -t "
                         f"{target.name}). dbxml run runs local targets: local or connect.")
    root = bundle_root(root)
    job = load_job(job_name, target, root)
    plans = planned_runs(job, overrides or {})
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(target.home) / "runs" / f"{stamp}-{job.name}"
    folder.mkdir(parents=True, exist_ok=True)
    outcome = JobRun(job, folder, [], [])
    with contextlib.ExitStack() as stack:
        remote = None if in_process or profile else stack.enter_context(run_spark(target))
        if records_watermark(job) and not again:
            from dbxml.watermark import processed_months  # only here: the watermark is a Delta table

            if remote is None:
                processed = processed_months(get_spark(target), target)
            else:  # a client of the run's server, closed before the server stops (else its exit waits on it)
                client = connect_spark(remote)
                try:
                    processed = processed_months(client, target)
                finally:
                    client.stop()
            plans, outcome.skipped = unprocessed(plans, processed)
            if outcome.skipped and progress is not None:
                progress.months_skipped(outcome.skipped)
        if profile:
            from dbxml.profile import ProfilingExecutor  # only here: it reads the local session's counters

            executor = ProfilingExecutor(InProcessExecutor(target), target)
        elif in_process:
            executor = InProcessExecutor(target)  # the target's own Spark, in this process
        elif plans:
            # SPARK_REMOTE too: library code that asks pyspark for "the" session (MLflow's dataset lineage) finds it
            environ = os.environ | {"DBXML_SPARK": "connect", "DBXML_SPARK_REMOTE": remote, "SPARK_REMOTE": remote}
            pool = KernelPool(environ, root, folder / "kernels.log")
            stack.callback(pool.close)
            executor = PapermillExecutor(pool)

        def finished(plan: dict, results: list[TaskResult], run_folder: Path) -> None:
            label = plan.get("month", "")
            chosen = next((str(result.values["month"]) for result in results if result.values.get("month")), "")
            if chosen and label != chosen:  # a scheduled-style run (month=next): name the month it processed
                for result in results:
                    result.run = chosen
                for measured in getattr(executor, "profiles", []):
                    measured.run = chosen if measured.run == label else measured.run
            outcome.mlflow_runs.append(log_run(target, job, plan, results, run_folder))
        if plans:  # else every month was processed already, and no executor was made
            outcome.results = run_plans(job, plans, folder, executor, progress,
                                        overlap=overlap and not (in_process or profile), finished=finished)
    if profile:
        from dbxml.profile import profile_table

        outcome.profiles = executor.profiles
        (folder / "profile.md").write_text(profile_table(outcome.profiles) + "\n")
    return outcome
