"""Results on the pages (nbs/07_results.ipynb, ADR 0017): `make results` keeps the outputs of `#| results` cells
only, a second run changes nothing, a failing cell is one clear error, and the committed notebooks hold results."""
import json
import subprocess
import sys

import pytest
from conftest import ROOT

from dbxml.config import DbxmlError
from dbxml.hygiene import git
from dbxml.results import is_results_cell, results_notebooks, write_results

KERNELSPEC = {"display_name": "python3", "language": "python", "name": "python3"}


def code_cell(cell_id: str, source: str) -> dict:
    return {"cell_type": "code", "id": cell_id, "metadata": {}, "source": source, "outputs": [], "execution_count": None}


def write_notebook(path, cells):
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": KERNELSPEC}, "nbformat": 4,
                                "nbformat_minor": 5}, indent=1) + "\n")


@pytest.fixture
def small_repo(repo_copy):
    "A copy of the repository with one small notebook of results: a table, a print, warnings, and a plain cell."
    write_notebook(repo_copy / "nbs" / "99_small.ipynb", [
        code_cell("a1", "import sys, warnings\nimport pandas as pd\nprint('not kept')"),
        code_cell("b2", "#| results\nprint('kept: 42')\nsys.stderr.write('a warning that changes every run\\n')\n"
                        "pd.DataFrame({'rule': ['b', 'a'], 'rows': [2, 1]}).sort_values('rule')"),
        code_cell("c3", "#| databricks\nraise RuntimeError('runs only in a workspace')"),
    ])
    git("add", "-A", cwd=repo_copy)
    git("commit", "-qm", "a small notebook", cwd=repo_copy)
    return repo_copy


def run_results(repo, *names):
    "`write_results` in a child process run from `repo` (as `make results` runs it)."
    code = f"from dbxml.results import write_results; write_results(names={list(names)!r})"
    return subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=600)


def test_only_results_cells_keep_outputs_and_a_rerun_changes_nothing(small_repo):
    done = run_results(small_repo, "99_small.ipynb")
    assert done.returncode == 0, done.stdout + done.stderr
    cells = json.loads((small_repo / "nbs" / "99_small.ipynb").read_text())["cells"]
    assert cells[0]["outputs"] == [] and cells[2]["outputs"] == []  # a plain cell, and one that never runs here
    kept = cells[1]["outputs"]
    assert [output["output_type"] for output in kept] == ["stream", "execute_result"]
    assert "".join(kept[0]["text"]) == "kept: 42\n"  # stdout kept, the stderr warning dropped
    assert "<td>a</td>" in "".join(kept[1]["data"]["text/html"]) and kept[1]["execution_count"] is None
    git("add", "-A", cwd=small_repo)
    git("commit", "-qm", "results", cwd=small_repo)
    again = run_results(small_repo, "99_small.ipynb")
    assert again.returncode == 0, again.stdout + again.stderr
    assert git("status", "--porcelain", cwd=small_repo) == ""


def test_a_failing_results_notebook_is_one_clear_error(small_repo):
    path = small_repo / "nbs" / "99_small.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"][0]["source"] = "raise ValueError('the year has not been run')"
    path.write_text(json.dumps(notebook))
    done = run_results(small_repo, "99_small.ipynb")
    assert done.returncode != 0
    assert "99_small.ipynb failed while writing its results" in done.stderr
    assert "the year has not been run" in done.stderr
    with pytest.raises(DbxmlError, match="no results cells in"):
        write_results(small_repo, ["00_config.ipynb"])


def test_the_committed_notebooks_hold_their_results():
    "Every results cell of the library carries what `make results` wrote: a table, or a figure as a PNG."
    found = {}
    for path in results_notebooks(ROOT):
        for cell in json.loads(path.read_text())["cells"]:
            if is_results_cell(cell):
                kinds = {kind for output in cell["outputs"] for kind in output.get("data", {})}
                found.setdefault(path.name, set()).update(kinds)
                assert cell["outputs"], f"{path.name}: a results cell without output (run `make results`)"
    assert "text/html" in found["13_silver.ipynb"] and "text/html" in found["14_gold.ipynb"]
    for name in ("14_gold.ipynb", "20_train.ipynb", "23_monitor.ipynb"):
        assert "image/png" in found[name], name


def test_no_other_cell_carries_an_output():
    "Outputs anywhere else would churn every diff: only results cells have them."
    for path in sorted((ROOT / "nbs").rglob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code" and not is_results_cell(cell):
                assert not cell.get("outputs"), f"{path.relative_to(ROOT)}: cell {cell['id']} has outputs"
