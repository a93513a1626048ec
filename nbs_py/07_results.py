# %% [markdown]
# # Results on the pages
# > The few outputs a reader of the docs should see (a quarantine, a mart, a model's
# > figures, the year's drift), committed in the notebooks and rewritten only by `make results`.
#
# A notebook is committed without outputs, except in the cells that say `#| results`.
# Those hold what the documentation site shows: the page renders the committed output,
# it does not run the notebook. `make results` executes the notebooks that have such
# cells, from the top, and writes back the outputs of those cells only; every other
# output is dropped. Because the results cells show only deterministic things (sorted
# tables, figures of seeded models), running it again changes nothing in git.
#
# Some results need the real year: a cell that also says `#| year` reads the `local`
# target's tables after `make run` (the main job). `year` is one of nbdev's test flags
# (`tst_flags` in `settings.ini`), so `nbdev_test` skips those cells, and `make results`
# runs them. Why committed outputs and not notebooks run by the docs build:
# `nbs/decisions/0017-results-on-the-pages.md`.

# %%
#| default_exp results

# %%
#| export
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from execnb.nbio import dict2nb
from execnb.shell import CaptureShell
from fastcore.basics import AttrDict
from nbdev.process import extract_directives

from dbxml.config import DbxmlError

# %%
#| hide
from fastcore.test import test_eq, test_fail

from dbxml.config import find_config

# %% [markdown]
# ## Which cells keep their outputs
#
# A directive is a leading `#| name` line of a code cell, as nbdev reads it.

# %%
#| export
RESULTS = "results"  # the directive of a cell whose outputs are committed
YEAR = "year"  # the test flag of a cell that reads the local target's year (after `make run`)
NEVER_HERE = ("databricks", "job")  # test flags of cells that run only in a workspace or inside a job run

def cell_directives(cell: dict,  # a cell of a notebook as parsed JSON
                   ) -> dict[str, list[str]]:
    "The `#|` directives of a code cell, by name; none for a markdown cell."
    if cell.get("cell_type") != "code":
        return {}
    source = cell.get("source", "")
    return extract_directives(AttrDict(source="".join(source) if isinstance(source, list) else source), remove=False)

def is_results_cell(cell: dict) -> bool:
    "Whether `cell`'s outputs are committed."
    return RESULTS in cell_directives(cell)

def runs_here(cell: dict) -> bool:
    "Whether `make results` executes `cell`: code, not `eval: false`, and not for a workspace or a job run only."
    directives = cell_directives(cell)
    skipped = directives.get("eval:", [""])[0].lower() == "false" or set(NEVER_HERE) & directives.keys()
    return cell.get("cell_type") == "code" and not skipped


# %%
year_cell = {"cell_type": "code", "source": ["#| results\n", "#| year\n", "monitoring_figure(history)"]}
test_eq(sorted(cell_directives(year_cell)), [RESULTS, YEAR])
assert is_results_cell(year_cell) and runs_here(year_cell)
assert not is_results_cell({"cell_type": "code", "source": "print(1)  #| results is only a directive on top"})
assert not runs_here({"cell_type": "code", "source": "#| databricks\nspark.table('x')"})
assert not runs_here({"cell_type": "code", "source": "#| eval: false\nrun_everything()"})
assert not runs_here({"cell_type": "markdown", "source": "#| results"})


# %% [markdown]
# ## Keeping only what is deterministic
#
# A results cell keeps what it displays and prints. Its `stderr` stream (Spark's and
# Python's warnings) and execution counts are dropped: they differ from run to run.

# %%
#| export
def kept_outputs(outputs: list[dict],  # the outputs of one executed cell
                ) -> list[dict]:
    "The outputs worth committing: no stderr stream, no execution count."
    kept = []
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            continue
        output = {key: value for key, value in dict(output).items() if key != "execution_count"}
        if output.get("output_type") == "execute_result":
            output["execution_count"] = None
        kept.append(output)
    return kept

def with_results(notebook: dict,  # the committed notebook
                 executed: list[list[dict]],  # the outputs of each of its cells, from an execution
                ) -> dict:
    "`notebook` with the outputs of its results cells taken from `executed`, and no other outputs."
    cells = []
    for cell, outputs in zip(notebook["cells"], executed, strict=True):
        if cell.get("cell_type") == "code":
            cell = {**cell, "execution_count": None, "outputs": kept_outputs(outputs) if is_results_cell(cell) else []}
        cells.append(cell)
    return {**notebook, "cells": cells}


# %%
plain = {"cell_type": "code", "source": "x = 1", "outputs": [], "execution_count": None, "metadata": {}}
shown = {"cell_type": "code", "source": "#| results\nx", "outputs": [], "execution_count": None, "metadata": {}}
executed = [[{"output_type": "stream", "name": "stdout", "text": ["noise\n"]}],
            [{"output_type": "stream", "name": "stderr", "text": ["WARN spark\n"]},
             {"output_type": "execute_result", "execution_count": 7, "data": {"text/plain": ["1"]}, "metadata": {}}]]
written = with_results({"cells": [plain, shown], "metadata": {}}, executed)
test_eq(written["cells"][0]["outputs"], [])
test_eq(written["cells"][1]["outputs"],
        [{"output_type": "execute_result", "data": {"text/plain": ["1"]}, "metadata": {}, "execution_count": None}])
test_fail(lambda: with_results({"cells": [plain, shown], "metadata": {}}, executed[:1]), contains="shorter")


# %% [markdown]
# ## Executing a notebook
#
# The notebook runs in this process, in its own folder, the way `nbdev_test` runs it
# (with execnb's shell), cell by cell from the top; the first error stops it and is
# reported with the notebook's name. Figures come out as PNG images.

# %%
#| export
def execute_outputs(path: Path,  # a notebook
                   ) -> list[list[dict]]:
    "The outputs of every cell of the notebook at `path`, executed from the top (cells that do not run here: none)."
    notebook = json.loads(path.read_text(encoding="utf-8"))
    executable = dict2nb(notebook)
    shell = CaptureShell(path, mpl_format="png")
    previous = Path.cwd()
    os.chdir(path.parent)
    try:
        shell.run_all(executable, exc_stop=True, preproc=lambda cell: not runs_here(dict(cell)))
    except Exception as error:
        raise DbxmlError(f"{path.name} failed while writing its results: {error}") from error
    finally:
        os.chdir(previous)
    return [list(cell.get("outputs", [])) if cell.cell_type == "code" else [] for cell in executable.cells]


# %% [markdown]
# ## Writing the results
#
# `write_results` rewrites each notebook that has results cells, then lets `nbdev_clean`
# format it as every commit is formatted. Each notebook runs in a process of its own, so
# one notebook's Spark session or MLflow settings cannot leak into the next.

# %%
#| export
def results_notebooks(root: Path | str = ".",  # the repository root
                     ) -> list[Path]:
    "The notebooks under `nbs/` with at least one results cell."
    notebooks = sorted((Path(root) / "nbs").rglob("*.ipynb"))
    return [path for path in notebooks if ".ipynb_checkpoints" not in path.parts
            and any(is_results_cell(cell) for cell in json.loads(path.read_text(encoding="utf-8"))["cells"])]

def write_notebook_results(path: Path,  # a notebook with results cells
                          ) -> None:
    "Execute the notebook at `path` and write back the outputs of its results cells."
    notebook = json.loads(path.read_text(encoding="utf-8"))
    written = with_results(notebook, execute_outputs(path))
    path.write_text(json.dumps(written, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

def write_results(root: Path | str = ".",  # the repository root
                  names: list[str] | None = None,  # notebook names to limit it to, e.g. `["13_silver.ipynb"]`
                 ) -> list[Path]:
    "Rewrite the results cells of every results notebook (or of `names`), each in a child process; return them."
    root = Path(root).resolve()
    notebooks = [path for path in results_notebooks(root) if names is None or path.name in names]
    if names and len(notebooks) < len(names):
        raise DbxmlError(f"no results cells in {sorted(set(names) - {path.name for path in notebooks})}; "
                         f"notebooks with results: {[path.name for path in results_notebooks(root)]}")
    for path in notebooks:
        print(f"results: {path.relative_to(root)}", flush=True)
        code = f"from pathlib import Path; from dbxml.results import write_notebook_results; " \
               f"write_notebook_results(Path({str(path)!r}))"
        done = subprocess.run([sys.executable, "-c", code], cwd=root)
        if done.returncode != 0:
            raise DbxmlError(f"writing the results of {path.relative_to(root)} failed (its error is above)")
    subprocess.run([str(Path(sys.executable).parent / "nbdev_clean")], cwd=root, check=True, capture_output=True)
    return notebooks


# %% [markdown]
# The library's own notebooks with results (this one has none: it would run itself):

# %%
repository = find_config().parent
found = [path.name for path in results_notebooks(repository)]
assert {"13_silver.ipynb", "14_gold.ipynb", "20_train.ipynb", "23_monitor.ipynb"} <= set(found), found
assert "07_results.ipynb" not in found
test_fail(lambda: write_results(repository, ["07_results.ipynb"]), contains="no results cells")
