# %% [markdown]
# # The job graph
# > Read a job from the Databricks bundle, for any target, so the local runner and the
# > workspace run the very same graph.
#
# The bundle (`databricks.yml` and `resources/*.yml`) is what `databricks bundle deploy`
# turns into jobs in a workspace. It already says everything a run needs: the tasks,
# their order, the notebook of each, its parameters, and conditions such as "retrain
# only when monitoring asked for it". So dbxml keeps no second copy: this module reads
# the bundle and resolves it for a target the way the Databricks CLI does for the
# parts a local run uses:
#
# - `${bundle.target}`, `${bundle.name}` and `${var.NAME}` when the job is loaded
#   (variables take the target's value in `databricks.yml`, or, for a target the bundle
#   does not deploy such as `local`, the field of the same name in `dbxml.toml`, or
#   the variable's default);
# - `{{job.parameters.NAME}}` and `{{tasks.KEY.values.NAME}}` while the job runs, the
#   way Databricks fills them in.
#
# Running the graph is the runner's job (`dbxml.runner`); this module only reads and
# orders it, and judges condition tasks.

# %%
#| default_exp jobs

# %%
#| export
from __future__ import annotations

import graphlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dbxml.config import DbxmlError, Target, find_config, target_values

# %%
#| hide
from fastcore.test import test_eq, test_fail

from dbxml.config import load_target

# %% [markdown]
# ## Reading the bundle
#
# `databricks.yml` names its resource files with `include` globs. Each job remembers the
# file it came from, because a notebook path in a job is relative to that file.

# %%
#| export
BUNDLE_FILE = "databricks.yml"

def bundle_root(start: Path | str | None = None,  # a folder inside the repository (default: where dbxml.toml is)
               ) -> Path:
    "The folder holding `databricks.yml`: `start` or the nearest folder above it."
    start = Path(start) if start else find_config().parent
    for folder in [start.resolve(), *start.resolve().parents]:
        if (folder / BUNDLE_FILE).is_file():
            return folder
    raise DbxmlError(f"no {BUNDLE_FILE} in {start} or any folder above it: run dbxml from the repository.")

def read_yaml(path: Path) -> dict:
    "A YAML file as a dictionary; a `DbxmlError` naming the file when it is malformed."
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise DbxmlError(f"{path} is not valid YAML: {error}") from None

def bundle_files(root: Path) -> list[Path]:
    "`databricks.yml` and every file its `include` globs name, in order."
    config = read_yaml(root / BUNDLE_FILE)
    included = [path for pattern in config.get("include", []) for path in sorted(root.glob(pattern))]
    return [root / BUNDLE_FILE, *included]


# %%
root = bundle_root()
files = bundle_files(root)
test_eq(files[0].name, "databricks.yml")
assert root / "resources" / "monthly_job.yml" in files


# %% [markdown]
# ## Variables and targets
#
# A bundle variable resolves, in order, to the target's own value in `databricks.yml`,
# to the `dbxml.toml` field of the same name (so `${var.catalog}` is `local` for the
# local target), or to its default. A variable with none of these is an error only
# when something uses it.

# %%
#| export
def bundle_variables(root: Path,  # the bundle's folder
                     target: Target,  # the dbxml target the job runs for
                    ) -> dict[str, str]:
    "The value of every bundle variable that has one for `target`."
    config = read_yaml(root / BUNDLE_FILE)
    declared = config.get("variables", {})
    target_config = config.get("targets", {}).get(target.name, {})
    fields = target_values(target)
    values = {}
    for name, spec in declared.items():
        if name in target_config.get("variables", {}):
            values[name] = target_config["variables"][name]
        elif name in fields:
            values[name] = fields[name]
        elif isinstance(spec, dict) and "default" in spec:
            values[name] = spec["default"]
    return values

BUNDLE_REFERENCE = re.compile(r"\$\{([a-zA-Z0-9_.]+)\}")

def resolve_bundle_references(value,  # a string, list or dict from a bundle file
                              context: dict[str, object],  # e.g. `{"bundle.target": "local", "var.catalog": "local"}`
                              where: str = "the bundle",  # for the error message
                             ):
    "`value` with every `${...}` replaced from `context`, recursively; a `DbxmlError` for an unknown one."
    if isinstance(value, dict):
        return {key: resolve_bundle_references(item, context, where) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_bundle_references(item, context, where) for item in value]
    if not isinstance(value, str):
        return value
    def replace(match):
        if match.group(1) not in context:
            raise DbxmlError(f"{where} uses ${{{match.group(1)}}}, which has no value for this target.")
        return str(context[match.group(1)])
    return BUNDLE_REFERENCE.sub(replace, value)


# %%
local = load_target("local")
variables = bundle_variables(root, local)
test_eq(variables["catalog"], "local")
test_eq(bundle_variables(root, load_target("prod"))["catalog"], "dbxml_prod")
test_eq(resolve_bundle_references({"a": ["${var.x}-${bundle.target}"]}, {"var.x": "1", "bundle.target": "dev"}),
        {"a": ["1-dev"]})
test_fail(lambda: resolve_bundle_references("${workspace.host}", {}), contains="${workspace.host}")


# %% [markdown]
# ## Tasks and jobs
#
# A `Task` keeps what a run needs: its notebook (an absolute path), its parameters as
# written (dynamic references still in them), its dependencies with the outcome each
# requires, and for a condition task the comparison.

# %%
#| export
@dataclass(frozen=True)
class Dependency:
    "A task this one waits for; `outcome` (`\"true\"`/`\"false\"`) when that task is a condition."
    task_key: str
    outcome: str | None = None

@dataclass(frozen=True)
class Task:
    "One task of a job: a notebook to run, or a condition to judge."
    key: str
    depends_on: tuple[Dependency, ...] = ()
    notebook: Path | None = None  # the notebook file (`.ipynb`)
    parameters: dict[str, str] = field(default_factory=dict)  # base parameters, `{{...}}` still in them
    condition: tuple[str, str, str] | None = None  # (left, op, right) of a condition task
    run_if: str = "ALL_SUCCESS"  # when it runs, given its dependencies' states (`RUN_IF`)

@dataclass(frozen=True)
class Job:
    "A job of the bundle, resolved for one target."
    name: str  # the job's key under `resources.jobs`
    title: str  # its display name
    parameters: dict[str, str]  # job parameters and their defaults
    tasks: tuple[Task, ...]

    def task(self, key: str) -> Task:
        "The task called `key`."
        return next(task for task in self.tasks if task.key == key)


# %%
#| export
RUN_IF = ("ALL_SUCCESS", "NONE_FAILED", "ALL_DONE")  # the `run_if` values the local runner implements

def parse_task(spec: dict, folder: Path, job: str) -> Task:
    "A `Task` from its bundle spec; notebook paths are relative to `folder`, the job file's folder."
    depends_on = tuple(Dependency(dep["task_key"], dep.get("outcome")) for dep in spec.get("depends_on", []))
    run_if = spec.get("run_if", "ALL_SUCCESS")
    if run_if not in RUN_IF:
        raise DbxmlError(f"job {job}, task {spec['task_key']}: dbxml runs run_if {', '.join(RUN_IF)} locally, "
                         f"not {run_if}.")
    if "notebook_task" in spec:
        notebook = (folder / spec["notebook_task"]["notebook_path"]).resolve()
        if notebook.suffix != ".ipynb":
            notebook = notebook.with_suffix(".ipynb")
        parameters = {name: str(value) for name, value in spec["notebook_task"].get("base_parameters", {}).items()}
        return Task(spec["task_key"], depends_on, notebook=notebook, parameters=parameters, run_if=run_if)
    if "condition_task" in spec:
        condition = spec["condition_task"]
        return Task(spec["task_key"], depends_on, condition=(str(condition["left"]), condition["op"],
                                                             str(condition["right"])), run_if=run_if)
    kinds = sorted(key for key in spec if key.endswith("_task"))
    raise DbxmlError(f"job {job}, task {spec['task_key']}: dbxml runs notebook and condition tasks locally, "
                     f"not {', '.join(kinds) or 'a task with no type'}.")

def load_job(name: str,  # the job's key under `resources.jobs`, e.g. `monthly`
             target: Target,  # the target to resolve it for
             root: Path | str | None = None,  # the bundle's folder (default: `bundle_root()`)
            ) -> Job:
    "Job `name` from the bundle, with `${...}` resolved for `target`."
    root = bundle_root(root)
    context = {"bundle.target": target.name, "bundle.name": read_yaml(root / BUNDLE_FILE)["bundle"]["name"]}
    context |= {f"var.{key}": value for key, value in bundle_variables(root, target).items()}
    found = {}
    for path in bundle_files(root):
        for key, spec in read_yaml(path).get("resources", {}).get("jobs", {}).items():
            found[key] = (path, spec)
    if name not in found:
        raise DbxmlError(f"no job {name!r} in the bundle; its jobs are: {', '.join(sorted(found)) or 'none'}.")
    path, spec = found[name]
    # only what a local run uses; compute, schedules and notifications are the workspace's business
    spec = resolve_bundle_references({key: spec[key] for key in ("name", "parameters", "tasks") if key in spec},
                                     context, f"job {name} ({path.name})")
    tasks = tuple(parse_task(task, path.parent, name) for task in spec["tasks"])
    parameters = {item["name"]: str(item["default"]) for item in spec.get("parameters", [])}
    return Job(name, spec.get("name", name), parameters, tasks)


# %%
job = load_job("monthly", local)
test_eq(job.title, "dbxml-monthly-local")
test_eq(job.task("lakehouse").parameters, {"target_name": "local", "month": "{{job.parameters.month}}"})
assert job.task("lakehouse").notebook.is_file()
test_eq(job.task("train").depends_on, (Dependency("retrain_needed", "true"),))
test_eq(job.task("retrain_needed").condition, ("{{tasks.monitor.values.retrain}}", "EQUAL_TO", "true"))
test_eq(job.task("month_complete").condition, ("{{tasks.lakehouse.values.volume}}", "EQUAL_TO", "ok"))
test_eq(job.task("score").depends_on, (Dependency("month_complete", "true"),))  # an empty or short month stops here
test_eq(job.task("record_month").run_if, "NONE_FAILED")  # runs after a month with no retrain, too
test_fail(lambda: parse_task({"task_key": "t", "run_if": "AT_LEAST_ONE_FAILED", "condition_task": {}}, root, "j"),
          contains="not AT_LEAST_ONE_FAILED")
test_fail(lambda: load_job("nightly", local), contains="no job 'nightly' in the bundle; its jobs are:")


# %% [markdown]
# ## Order
#
# Tasks run in dependency order; `graphlib` (standard library) sorts them and rejects a
# cycle or a dependency on a task that does not exist. Ties keep the file's order, so a
# run reads like the YAML.

# %%
#| export
def task_order(job: Job) -> list[Task]:
    "The tasks of `job` in an order that runs every task after the tasks it depends on."
    keys = [task.key for task in job.tasks]
    for task in job.tasks:
        missing = [dep.task_key for dep in task.depends_on if dep.task_key not in keys]
        if missing:
            raise DbxmlError(f"job {job.name}: task {task.key} depends on {', '.join(missing)}, not a task of the job.")
    sorter = graphlib.TopologicalSorter({task.key: [dep.task_key for dep in task.depends_on] for task in job.tasks})
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        raise DbxmlError(f"job {job.name}: the tasks depend on each other in a cycle: {' -> '.join(error.args[1])}") from None
    ordered = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=keys.index)
        ordered += ready
        sorter.done(*ready)
    return [job.task(key) for key in ordered]


# %%
test_eq([task.key for task in task_order(job)],
        ["lakehouse", "month_complete", "score", "monitor", "retrain_needed", "train", "promote", "record_month"])
looped = Job("loop", "loop", {}, (Task("a", (Dependency("b"),)), Task("b", (Dependency("a"),))))
test_fail(lambda: task_order(looped), contains="in a cycle")

# %% [markdown]
# ## Dynamic values
#
# While a job runs, `{{job.parameters.NAME}}` is the run's parameter and
# `{{tasks.KEY.values.NAME}}` a value an earlier task set (see `dbxml.params`). A
# reference to a value nobody set is an error, as it is on Databricks.

# %%
#| export
DYNAMIC_REFERENCE = re.compile(r"\{\{\s*([a-zA-Z0-9_.]+)\s*\}\}")

def fill_references(text: str,  # a parameter or condition operand
                    job_parameters: dict[str, str],  # this run's job parameters
                    values: dict[str, dict[str, str]],  # task key -> rendered task values so far
                    run_id: str = "local",  # what `{{job.run_id}}` stands for (a local run has no job run id)
                   ) -> str:
    "`text` with its `{{job.parameters.*}}`, `{{tasks.*.values.*}}` and `{{job.run_id}}` references filled in."
    def replace(match):
        parts = match.group(1).split(".")
        if parts == ["job", "run_id"]:
            return run_id
        if parts[:2] == ["job", "parameters"] and len(parts) == 3 and parts[2] in job_parameters:
            return job_parameters[parts[2]]
        if len(parts) == 4 and parts[0] == "tasks" and parts[2] == "values" and parts[3] in values.get(parts[1], {}):
            return values[parts[1]][parts[3]]
        raise DbxmlError(f"{{{{{match.group(1)}}}}} has no value in this run.")
    return DYNAMIC_REFERENCE.sub(replace, text)


# %%
test_eq(fill_references("{{job.parameters.month}}", {"month": "2013-05"}, {}), "2013-05")
test_eq(fill_references("{{tasks.monitor.values.retrain}}", {}, {"monitor": {"retrain": "true"}}), "true")
test_fail(lambda: fill_references("{{tasks.train.values.model_version}}", {}, {}), contains="has no value")
test_eq(fill_references("run {{job.run_id}}", {}, {}), "run local")

# %% [markdown]
# ## Conditions
#
# A condition task compares two strings the way Databricks does: numerically when both
# sides are numbers, otherwise as text (only equality makes sense there).

# %%
#| export
COMPARISONS = {
    "EQUAL_TO": lambda left, right: left == right, "NOT_EQUAL": lambda left, right: left != right,
    "GREATER_THAN": lambda left, right: left > right, "GREATER_THAN_OR_EQUAL": lambda left, right: left >= right,
    "LESS_THAN": lambda left, right: left < right, "LESS_THAN_OR_EQUAL": lambda left, right: left <= right,
}

def as_number(text: str) -> float | None:
    "`text` as a number, or None when it is not one."
    try:
        return float(text)
    except ValueError:
        return None

def condition_holds(left: str, op: str, right: str) -> bool:
    "The outcome of a condition task whose operands are already filled in."
    if op not in COMPARISONS:
        raise DbxmlError(f"unknown condition operator {op}; use one of {', '.join(COMPARISONS)}.")
    numbers = as_number(left), as_number(right)
    if None not in numbers:
        return COMPARISONS[op](*numbers)
    return COMPARISONS[op](left, right)


# %%
assert condition_holds("true", "EQUAL_TO", "true")
assert not condition_holds("false", "EQUAL_TO", "true")
assert condition_holds("10", "GREATER_THAN", "9")  # numbers, not text ("10" < "9" as text)
test_fail(lambda: condition_holds("1", "ABOUT", "1"), contains="unknown condition operator")
