# %% [markdown]
# # Diagrams
# > The architecture page's diagrams, generated from the code so they cannot drift.
#
# A hand-drawn diagram is right on the day it is drawn. The architecture page
# (`nbs/platform/architecture.md`) shows two pictures that would go stale first: the
# monthly job's graph and the package's module graph. This module writes both as
# [Mermaid](https://mermaid.js.org/) text in a fenced `mermaid` block, which GitHub
# draws as a diagram. (Quarto draws only `{mermaid}` cells, and refuses those in a `.md`
# page: "You must use the .qmd extension for documents with executable code"; so the
# site shows the Mermaid text.) The job graph is read from `resources/monthly_job.yml`, the
# file both `dbxml run` and Databricks read. The module graph is read from the
# package's own imports with `ast`. `write_diagrams` rewrites the page's generated
# blocks between marker comments. The output is sorted, so the same code always gives
# the same text, and a test can compare the committed page with a fresh run.

# %%
#| default_exp diagrams

# %%
#| export
from __future__ import annotations

import ast
import re
from pathlib import Path

from dbxml.config import DbxmlError
from dbxml.jobs import read_yaml

# %%
#| hide
import tempfile

from fastcore.test import test_fail


# %% [markdown]
# ## The job graph
#
# Mermaid node ids share a namespace with its keywords (`end`, `graph`, `subgraph`), so
# every id gets a prefix; the label keeps the real name.

# %%
#| export
def node_id(prefix: str,  # what kind of node, e.g. `task` or `module`
            name: str,  # the task key or module name
           ) -> str:
    "A Mermaid node id for `name` that cannot clash with a Mermaid keyword."
    return f"{prefix}_{re.sub(r'[^0-9A-Za-z_]', '_', name)}"


# %%
assert node_id("task", "month_complete") == "task_month_complete"
assert node_id("module", "end") == "module_end"
assert node_id("task", "a-b.c") == "task_a_b_c"

# %% [markdown]
# A condition task compares two operands, usually a task value written as a dynamic
# reference. The label shortens `{{tasks.lakehouse.values.volume}}` to
# `lakehouse.volume`, which is how a reader says it.

# %%
#| export
OPERATORS = {"EQUAL_TO": "==", "NOT_EQUAL": "!="}  # the rest are shown by name, e.g. `greater than`

def condition_label(condition: dict,  # a task's `condition_task`: `left`, `op`, `right`
                   ) -> str:
    "The condition as a short expression, e.g. `lakehouse.volume == ok`."
    def operand(text) -> str:
        text = str(text).replace("{{", "").replace("}}", "").strip()
        return re.sub(r"^tasks\.([^.]+)\.values\.", r"\1.", text)
    op = condition["op"]
    return f"{operand(condition['left'])} {OPERATORS.get(op, op.lower().replace('_', ' '))} {operand(condition['right'])}"


# %%
volume_ok = {"left": "{{tasks.lakehouse.values.volume}}", "op": "EQUAL_TO", "right": "ok"}
assert condition_label(volume_ok) == "lakehouse.volume == ok"
wide_window = {"left": "{{job.parameters.window}}", "op": "GREATER_THAN", "right": "2"}
assert condition_label(wide_window) == "job.parameters.window greater than 2"

# %% [markdown]
# The graph draws a notebook task as a box and a condition task as a diamond holding
# its condition. An edge is a `depends_on` entry; an edge from a condition carries the
# outcome it waits for. A task whose `run_if` is not Databricks' default
# (`ALL_SUCCESS`) says so in its box: `record_month` runs when no task failed, even if
# some were excluded.

# %%
#| export
DEFAULT_RUN_IF = "ALL_SUCCESS"

def job_graph(job: dict,  # one job of a bundle, e.g. `resources.jobs.monthly`, with its `tasks`
             ) -> str:
    "The job's tasks and `depends_on` edges as a Mermaid flowchart, sorted by task key."
    tasks = sorted(job.get("tasks", []), key=lambda task: task["task_key"])
    lines = ["flowchart TD"]
    for task in tasks:
        key = task["task_key"]
        if "condition_task" in task:
            lines.append(f'    {node_id("task", key)}{{"{key}<br/>{condition_label(task["condition_task"])}"}}')
        else:
            run_if = task.get("run_if", DEFAULT_RUN_IF)
            note = "" if run_if == DEFAULT_RUN_IF else f"<br/>run_if: {run_if}"
            lines.append(f'    {node_id("task", key)}["{key}{note}"]')
    edges = sorted((dependency["task_key"], task["task_key"], dependency.get("outcome"))
                   for task in tasks for dependency in task.get("depends_on", []))
    for upstream, downstream, outcome in edges:
        arrow = "-->" if outcome is None else f"-->|{outcome}|"
        lines.append(f"    {node_id('task', upstream)} {arrow} {node_id('task', downstream)}")
    return "\n".join(lines) + "\n"


# %%
tiny_job = {"tasks": [
    {"task_key": "load", "notebook_task": {"notebook_path": "load.ipynb"}},
    {"task_key": "enough", "depends_on": [{"task_key": "load"}],
     "condition_task": {"left": "{{tasks.load.values.rows}}", "op": "NOT_EQUAL", "right": "0"}},
    {"task_key": "report", "depends_on": [{"task_key": "enough", "outcome": "true"}, {"task_key": "load"}],
     "run_if": "NONE_FAILED", "notebook_task": {"notebook_path": "report.ipynb"}},
]}
print(job_graph(tiny_job))
assert job_graph(tiny_job).splitlines() == [
    "flowchart TD",
    '    task_enough{"enough<br/>load.rows != 0"}',
    '    task_load["load"]',
    '    task_report["report<br/>run_if: NONE_FAILED"]',
    "    task_enough -->|true| task_report",
    "    task_load --> task_enough",
    "    task_load --> task_report",
]

# %% [markdown]
# The order of tasks in the file does not change the text:

# %%
assert job_graph({"tasks": list(reversed(tiny_job["tasks"]))}) == job_graph(tiny_job)


# %% [markdown]
# ## The module graph
#
# `module_imports` finds which modules of the package a source file imports, in every
# spelling the package uses: `from dbxml.x import ...` and `import dbxml.x` as the
# notebooks write them, and `from .x import ...` as `nbdev_export` rewrites top-level
# imports. An import inside a function is *lazy*: the CLI, for instance, imports Spark's
# module only in the commands that need it, so `dbxml --help` starts fast. The
# package's `__init__` (only the version) is not a node.

# %%
#| export
def module_imports(source: str,  # the text of one module of the package
                   package: str,  # the package's name, e.g. `dbxml`
                   modules: set[str],  # the package's module names, e.g. `{"config", "jobs"}`
                  ) -> dict[str, bool]:
    "The package modules `source` imports, each mapped to True when every import of it sits inside a function."
    tree = ast.parse(source)
    lazy = {id(node) for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))}
    found: dict[str, bool] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
            targets = [parts[1] for parts in names if len(parts) > 1 and parts[0] == package]
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".") if node.module else []
            if node.level == 0 and parts[:1] == [package]:
                parts = parts[1:]
            elif node.level != 1:
                continue
            targets = parts[:1] or [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            if target in modules:
                found[target] = found.get(target, True) and id(node) in lazy
    return found


# %%
source = '''
from __future__ import annotations
import json
import dbxml.jobs
from .config import Target
from . import __version__
from dbxml import tables

def command():
    from dbxml.spark import get_spark
    from dbxml.jobs import load_job
'''
imported = module_imports(source, "dbxml", {"config", "jobs", "spark", "tables"})
assert imported == {"jobs": False, "config": False, "tables": False, "spark": True}  # jobs: imported at the top too
assert module_imports("import dbxmlother.config\nfrom other.config import x", "dbxml", {"config"}) == {}


# %% [markdown]
# `module_graph` draws one node per module and one edge per import: solid when the
# import runs as the module loads, dotted when it is lazy. Given `layers`, each layer
# becomes a box around its modules, in the order given.

# %%
#| export
def module_graph(package: Path,  # the package's folder, e.g. `dbxml/`
                 layers: dict[str, list[str]] | None = None,  # layer title -> its modules, in display order
                ) -> str:
    "The package's modules and their imports of each other as a Mermaid flowchart, sorted by module."
    package = Path(package)
    modules = sorted(path.stem for path in package.glob("*.py") if not path.stem.startswith("_"))
    grouped = {title: sorted(set(members) & set(modules)) for title, members in (layers or {}).items()}
    lines = ["flowchart LR"]
    for number, (title, members) in enumerate(grouped.items(), 1):
        if members:
            lines.append(f'    subgraph layer_{number}["{title}"]')
            lines += [f'        {node_id("module", name)}["{name}"]' for name in members]
            lines.append("    end")
    placed = {name for members in grouped.values() for name in members}
    lines += [f'    {node_id("module", name)}["{name}"]' for name in modules if name not in placed]
    for name in modules:
        imports = module_imports((package / f"{name}.py").read_text(encoding="utf-8"), package.name, set(modules))
        for target, lazy in sorted(imports.items()):
            if target != name:
                lines.append(f"    {node_id('module', name)} {'-.->' if lazy else '-->'} {node_id('module', target)}")
    return "\n".join(lines) + "\n"


# %%
scratch = Path(tempfile.mkdtemp())
package = scratch / "dbxml"
package.mkdir()
(package / "__init__.py").write_text('__version__ = "0"\n')
(package / "config.py").write_text("import json\n")
(package / "jobs.py").write_text("from .config import load\n")
(package / "cli.py").write_text("from .config import load\n\ndef run():\n    from dbxml.jobs import load_job\n")
print(module_graph(package, {"Foundation": ["config"], "Jobs": ["jobs", "runner"]}))
assert module_graph(package, {"Foundation": ["config"], "Jobs": ["jobs", "runner"]}).splitlines() == [
    "flowchart LR",
    '    subgraph layer_1["Foundation"]',
    '        module_config["config"]',
    "    end",
    '    subgraph layer_2["Jobs"]',
    '        module_jobs["jobs"]',
    "    end",
    '    module_cli["cli"]',
    "    module_cli --> module_config",
    "    module_cli -.-> module_jobs",
    "    module_jobs --> module_config",
]


# %% [markdown]
# The layers are the sidebar's sections: each exported module names its notebook in its
# header (`File to edit: ../nbs/02_catalog.ipynb`), and the sidebar puts that notebook
# in a section.

# %%
#| export
def sidebar_layers(root: Path,  # the repository root
                  ) -> dict[str, list[str]]:
    "Each section of `nbs/sidebar.yml` that lists library notebooks, with the modules they export."
    root = Path(root)
    notebook_of = {}
    for path in sorted((root / "dbxml").glob("*.py")):
        found = re.search(r"File to edit: \.\./nbs/(\S+\.ipynb)", path.read_text(encoding="utf-8")[:500])
        if found:
            notebook_of[found.group(1)] = path.stem
    layers = {}
    for entry in read_yaml(root / "nbs" / "sidebar.yml")["website"]["sidebar"]["contents"]:
        if isinstance(entry, dict) and isinstance(entry.get("contents"), list):
            members = [notebook_of[item] for item in entry["contents"] if item in notebook_of]
            if members:
                layers[entry["section"]] = members
    return layers


# %%
(scratch / "nbs").mkdir()
(scratch / "nbs" / "sidebar.yml").write_text(
    "website:\n  sidebar:\n    contents:\n      - index.ipynb\n"
    "      - section: Foundation\n        contents:\n          - 00_config.ipynb\n"
    "      - section: Decisions\n        contents: \"decisions/*.md\"\n")
(package / "config.py").write_text("# AUTOGENERATED! DO NOT EDIT! File to edit: ../nbs/00_config.ipynb.\nimport json\n")
assert sidebar_layers(scratch) == {"Foundation": ["config"]}

# %% [markdown]
# ## Writing the page
#
# The page keeps each diagram between two marker comments. `write_diagrams` replaces
# what is between them and leaves every other line alone, so the prose around a
# diagram stays hand-written. A page without a marker is an error that names it.

# %%
#| export
PAGE = Path("nbs/platform/architecture.md")
JOB_FILE = Path("resources/monthly_job.yml")
JOB = "monthly"

def replace_block(text: str,  # the page
                  name: str,  # the diagram's name in its markers, e.g. `job graph`
                  diagram: str,  # Mermaid text
                 ) -> str:
    "`text` with the block between the markers of `name` replaced by `diagram` in a `mermaid` fence."
    start, end = f"<!-- generated by dbxml.diagrams: {name} -->", f"<!-- end of generated {name} -->"
    pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise DbxmlError(f"{PAGE} has no '{start}' ... '{end}' block: put the two markers where the {name} goes.")
    return pattern.sub(lambda _: f"{start}\n```mermaid\n{diagram}```\n{end}", text, count=1)


# %%
page = "# A page\n<!-- generated by dbxml.diagrams: job graph -->\nold\n<!-- end of generated job graph -->\nafter\n"
filled = replace_block(page, "job graph", "flowchart TD\n")
assert filled == ("# A page\n<!-- generated by dbxml.diagrams: job graph -->\n```mermaid\nflowchart TD\n```\n"
                  "<!-- end of generated job graph -->\nafter\n")
assert replace_block(filled, "job graph", "flowchart TD\n") == filled  # a second run changes nothing
test_fail(lambda: replace_block(page, "module graph", "x\n"), contains="no '<!-- generated by dbxml.diagrams: module graph")


# %%
#| export
def write_diagrams(root: Path | str = ".",  # the repository root
                  ) -> list[Path]:
    "Regenerate the job graph and the module graph in the architecture page; return the files that changed."
    root = Path(root)
    job = read_yaml(root / JOB_FILE)["resources"]["jobs"][JOB]
    page = root / PAGE
    text = page.read_text(encoding="utf-8")
    updated = replace_block(text, "job graph", job_graph(job))
    updated = replace_block(updated, "module graph", module_graph(root / "dbxml", sidebar_layers(root)))
    if updated == text:
        return []
    page.write_text(updated, encoding="utf-8")
    return [page]


# %% [markdown]
# On a small repository: the first run fills the blocks, a second run changes nothing,
# and a new task shows up at once.

# %%
(scratch / "resources").mkdir()
(scratch / "resources" / "monthly_job.yml").write_text(
    "resources:\n  jobs:\n    monthly:\n      tasks:\n        - task_key: load\n")
(scratch / PAGE).parent.mkdir(parents=True)
(scratch / PAGE).write_text("---\ntitle: Architecture\n---\n\n"
    "<!-- generated by dbxml.diagrams: job graph -->\n<!-- end of generated job graph -->\n\n"
    "<!-- generated by dbxml.diagrams: module graph -->\n<!-- end of generated module graph -->\n")
assert write_diagrams(scratch) == [scratch / PAGE]
assert write_diagrams(scratch) == []
assert 'task_load["load"]' in (scratch / PAGE).read_text()
assert 'subgraph layer_1["Foundation"]' in (scratch / PAGE).read_text()
with (scratch / "resources" / "monthly_job.yml").open("a") as job_file:
    job_file.write("        - task_key: report\n          depends_on:\n            - task_key: load\n")
assert write_diagrams(scratch) == [scratch / PAGE]
assert "task_load --> task_report" in (scratch / PAGE).read_text()

# %% [markdown]
# The repository's own job graph, as the architecture page shows it:

# %%
print(job_graph(read_yaml(Path("../resources/monthly_job.yml"))["resources"]["jobs"]["monthly"]))
