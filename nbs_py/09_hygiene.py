# %% [markdown]
# # Notebook hygiene
# > The rules that keep notebooks reviewable, checked the same way by pre-commit and CI.
#
# Notebooks are the single source of dbxml, so their state is the project's state. Five
# rules keep that honest:
#
# 1. **Clean notebooks**: every notebook has cell ids and a kernelspec, and carries no
#    Databricks UI metadata or widget values (a notebook saved from a Databricks Git
#    folder has all three problems; papermill needs the kernelspec).
# 2. **No token or key in outputs or metadata**: a notebook run against a workspace
#    can print a token, and a saved notebook keeps what was printed. Every output and
#    every metadata string is scanned for tokens and keys.
# 3. **A jupytext twin**: every `nbs/X.ipynb` has a `py:percent` twin `nbs_py/X.py` with
#    the same cells, so a pull request shows plain Python diffs. A missing or stale
#    twin fails.
# 4. **Library in sync**: running `nbdev_clean`, `nbdev_export`, the README build and
#    the architecture page's diagrams (`dbxml.diagrams`) changes nothing, so `dbxml/`,
#    `README.md` and the diagrams are exactly what the notebooks and the job say.
# 5. **ruff** on the package, the notebooks and the tests, and **detect-secrets** on every
#    file git tracks, against the reviewed findings in `.secrets.baseline` (both run by
#    `make check`).
#
# `dbxml check` runs rules 1 to 4; pre-commit runs the same entry points. `SECURITY.md`
# says what else keeps secrets out of the repository. When rules 1, 3 or 4 fail,
# `dbxml check --fix` repairs the notebooks, regenerates the library and README and
# rewrites the twins; a token or key, and a twin whose notebook is gone, are left to a
# person (see *Fixing what can be fixed* below).

# %%
#| default_exp hygiene

# %%
#| export
from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from copy import deepcopy
from pathlib import Path
from secrets import token_hex

import jupytext
import nbformat
from jupytext.config import load_jupytext_config

from dbxml.config import DbxmlError

# %%
#| hide
import tempfile

from fastcore.test import test_eq

# %% [markdown]
# ## Rule 1: clean notebooks

# %%
#| export
DATABRICKS_NOTEBOOK_KEY = "application/vnd.databricks.v1+notebook"
DATABRICKS_CELL_KEY = "application/vnd.databricks.v1+cell"

def notebook_problems(notebook: dict,  # a notebook as parsed JSON
                     ) -> list[str]:
    "What is wrong with a notebook's metadata: missing kernelspec or cell ids, Databricks UI state."
    problems = []
    metadata = notebook.get("metadata", {})
    if "kernelspec" not in metadata:
        problems.append("no kernelspec (papermill cannot run it)")
    cells = notebook.get("cells", [])
    missing_ids = sum("id" not in cell for cell in cells)
    if missing_ids:
        problems.append(f"{missing_ids} cells without an id")
    if DATABRICKS_NOTEBOOK_KEY in metadata or any(DATABRICKS_CELL_KEY in cell.get("metadata", {}) for cell in cells):
        problems.append("Databricks UI metadata (saved from a Databricks Git folder)")
    if "widgets" in metadata or "widgets" in metadata.get(DATABRICKS_NOTEBOOK_KEY, {}):
        problems.append("widget state in the metadata")
    return problems


# %% [markdown]
# A notebook as this repository keeps it passes; the same notebook as the Databricks UI
# saves it (no ids, no kernelspec, widget values) fails on each count:

# %%
clean = {"metadata": {"kernelspec": {"name": "python3"}}, "cells": [{"id": "a1", "metadata": {}}]}
test_eq(notebook_problems(clean), [])
from_databricks = {"metadata": {DATABRICKS_NOTEBOOK_KEY: {"widgets": {"month": {"currentValue": "2013-05"}}}},
                   "cells": [{"metadata": {DATABRICKS_CELL_KEY: {}}}]}
test_eq(len(notebook_problems(from_databricks)), 4)

# %% [markdown]
# ## Rule 2: no token or key in outputs or metadata
#
# A cell that prints a client's configuration, a traceback that quotes a connection
# string, an extension that stores a workspace token in the metadata: the notebook keeps
# it, and a commit publishes it. `nbdev_clean` strips the usual metadata but keeps
# outputs, so this rule reads what cell sources do not show: every output (streams,
# text and JSON results, error tracebacks, output metadata) and every string in the
# notebook's and the cells' metadata. Cell sources are left to detect-secrets, which
# scans every tracked file (rule 5).
#
# The strings a notebook carries besides its code, each with where it is:

# %%
#| export
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # tracebacks are coloured

def strings_in(value,  # a piece of notebook JSON
               where: str,  # how to name its place in a report
              ) -> list[tuple[str, str]]:
    "Every string in `value` with its place: dict keys add `.key`, a list of strings is one text."
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [(where, "".join(value))]  # how notebooks store multi-line text
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in strings_in(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in strings_in(item, f"{where}[{index}]")]
    return []

def output_strings(output: dict,  # one output of a code cell
                   where: str,  # e.g. `cell 3 output 1`
                  ) -> list[tuple[str, str]]:
    "The text an output shows: stream text, error and traceback, textual mimetypes (not images), its metadata."
    found = []
    if output.get("output_type") == "stream":
        found += strings_in(output.get("text", ""), f"{where} ({output.get('name', 'stream')})")
    if output.get("output_type") == "error":
        lines = [output.get("ename", ""), output.get("evalue", ""), *output.get("traceback", [])]
        found.append((f"{where} (error)", ANSI_ESCAPE.sub("", "\n".join(lines))))
    for mimetype, data in output.get("data", {}).items():
        if mimetype.startswith("text/") or mimetype.endswith(("json", "javascript")):
            found += strings_in(data, f"{where} ({mimetype})")
    return found + strings_in(output.get("metadata", {}), f"{where} metadata")

def notebook_strings(notebook: dict,  # a notebook as parsed JSON
                    ) -> list[tuple[str, str]]:
    "Every metadata string and output text of `notebook`, with its place (cells counted from 1)."
    found = strings_in(notebook.get("metadata", {}), "notebook metadata")
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        found += strings_in(cell.get("metadata", {}), f"cell {number} metadata")
        for index, output in enumerate(cell.get("outputs", []), start=1):
            found += output_strings(output, f"cell {number} output {index}")
    return found


# %% [markdown]
# A place names the cell, the output and the key, so a report can say where without
# quoting what:

# %%
printed = {"cells": [{"metadata": {"tags": ["parameters"]}, "outputs": [
    {"output_type": "stream", "name": "stdout", "text": ["host: adb-1.azuredatabricks.net\n", "done\n"]},
    {"output_type": "display_data", "data": {"text/plain": "<Figure>", "image/png": "iVBORw0KGgo="},
     "metadata": {}},
    {"output_type": "error", "ename": "ValueError", "evalue": "bad month",
     "traceback": ["\x1b[0;31mValueError\x1b[0m: bad month"]}]}],
    "metadata": {"kernelspec": {"name": "python3"}}}
test_eq(notebook_strings(printed), [
    ("notebook metadata.kernelspec.name", "python3"),
    ("cell 1 metadata.tags", "parameters"),
    ("cell 1 output 1 (stdout)", "host: adb-1.azuredatabricks.net\ndone\n"),
    ("cell 1 output 2 (text/plain)", "<Figure>"),
    ("cell 1 output 3 (error)", "ValueError\nbad month\nValueError: bad month")])

# %% [markdown]
# Each string is scanned by detect-secrets' own plugins (AWS, GitHub, Slack, JWT,
# private keys, `password = ...` and more), through its API for scanning a string,
# plus patterns for the Azure and Databricks credentials this project could meet and
# detect-secrets does not know: Databricks personal access tokens, storage account
# keys and shared access signatures in connection strings and URLs, and Entra ID client
# secrets (whose `Q~` after the fourth character keeps ordinary words from matching).
# Three plugins are left out: the entropy ones, because outputs are full of hashes and
# ids (an MLflow run id is 32 hex characters) that entropy cannot tell from keys, and
# the public IP address one, because an address is not a credential. Tried on some 2,000
# notebooks (this project's executed runs and the examples of installed packages), the
# rule flagged one string, in minified JavaScript.

# %%
#| export
TOKEN_PATTERNS = {
    "Databricks personal access token": re.compile(r"\bdapi[0-9a-f]{32}(-\d+)?\b"),
    "Azure Storage Account access key": re.compile(r"\bAccountKey=[A-Za-z0-9+/]{20,}"),  # detect-secrets' wants 88 exactly
    "Azure shared access signature": re.compile(r"\bsig=[A-Za-z0-9%+/]{20,}"),
    "Entra ID client secret": re.compile(r"(?<![\w~.-])[\w~.-]{3}\dQ~[\w~.-]{31,34}(?![\w~.-])"),
}
NOISY_PLUGINS = {"Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector"}

def secret_kinds(text: str) -> set[str]:
    "The kinds of token or key found in `text` (run inside `scanning_settings()` for detect-secrets' plugins)."
    from detect_secrets.core.scan import scan_line  # a dev requirement, like every check here

    kinds = {kind for kind, pattern in TOKEN_PATTERNS.items() if pattern.search(text)}
    return kinds | {secret.type for line in text.splitlines() for secret in scan_line(line)}

def scanning_settings():
    "detect-secrets' settings for the duration of a `with`: every plugin but `NOISY_PLUGINS`, default filters."
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import transient_settings

    plugins = get_mapping_from_secret_type_to_class().values()
    return transient_settings({"plugins_used": [{"name": plugin.__name__} for plugin in plugins
                                                if plugin.__name__ not in NOISY_PLUGINS]})

def notebook_secrets(notebook: dict,  # a notebook as parsed JSON
                    ) -> list[str]:
    "Where `notebook`'s outputs or metadata carry a token or key, and of which kind; never the secret itself."
    with scanning_settings():
        found = [(where, secret_kinds(text)) for where, text in notebook_strings(notebook)]
    return [f"{where}: {', '.join(sorted(kinds))}; clear it, and revoke the credential if it is real"
            for where, kinds in found if kinds]


# %% [markdown]
# Fake credentials are built here at run time, so that this notebook holds no string
# shaped like one (detect-secrets would rightly flag it in the file). Each kind is
# found; ordinary output, run ids and this repository's own notebooks pass:

# %%
fakes = {"Databricks personal access token": "token dapi" + "0123456789abcdef" * 2 + "-2",
         "Azure Storage Account access key": "DefaultEndpointsProtocol=https;AccountName=dbxml;AccountKey="
                                      + "c2VjcmV0" * 11 + ";EndpointSuffix=core.windows.net",
         "Azure shared access signature": "https://dbxml.blob.core.windows.net/raw?sv=2022-11-02&sig="
                                          + "AbCd%2B" * 6,
         # in parentheses: a quoted string right after `secret":` is what detect-secrets' keyword rule flags
         "Entra ID client secret": ("value " + "aB3" + "8Q~" + "xY7_z.Wq-9" * 3 + "kLm4"),
         "AWS Access Key": "AKIA" + "IOSFODNN7EXAMPL3",
         "Private Key": "-----BEGIN RSA " + "PRIVATE KEY-----"}
with scanning_settings():
    for kind, text in fakes.items():
        test_eq(secret_kinds(text), {kind})
    test_eq(secret_kinds("run 3f2a9c1e8b7d4a6f9e0c1b2a3d4e5f60 logged; champion is version 3"), set())
leaky = {"metadata": {"kernelspec": {"name": "python3"}, "connection": fakes["Azure Storage Account access key"]},
         "cells": [{"metadata": {}, "outputs": [
             {"output_type": "error", "ename": "HTTPError", "evalue": "403", "traceback": [fakes["AWS Access Key"]]},
             {"output_type": "stream", "name": "stdout", "text": fakes["Databricks personal access token"]}]}]}
test_eq([problem.split(";")[0] for problem in notebook_secrets(leaky)],
        ["notebook metadata.connection: Azure Storage Account access key",
         "cell 1 output 1 (error): AWS Access Key",
         "cell 1 output 2 (stdout): Databricks personal access token"])
assert not any(fakes["Databricks personal access token"][6:] in problem for problem in notebook_secrets(leaky))
test_eq(notebook_secrets(printed), [])


# %% [markdown]
# ## Rule 3: a jupytext twin for every notebook
#
# Twins are compared by their cells (type and source), not as text, so the check does
# not depend on jupytext's version or header.

# %%
#| export
def twin_path(notebook_path: Path,  # a notebook under `nbs/`
              root: Path,  # the repository root
             ) -> Path:
    "Where the jupytext twin of `notebook_path` lives: the same place under `nbs_py/`, as `.py`."
    relative = Path(notebook_path).resolve().relative_to(Path(root).resolve() / "nbs")
    return Path(root) / "nbs_py" / relative.with_suffix(".py")

def cell_sources(path: Path) -> list[tuple[str, str]]:
    "The (type, source) of each cell of the notebook or twin at `path`: what a twin must agree on."
    with warnings.catch_warnings():  # a notebook without cell ids is rule 1's to report
        warnings.simplefilter("ignore")
        notebook = jupytext.read(path)
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]

def twin_problems(notebook_path: Path, twin: Path) -> list[str]:
    "Why the twin at `twin` does not match `notebook_path` (missing, or cells differ)."
    if not twin.is_file():
        return [f"no jupytext twin {twin} (run `jupytext --sync {notebook_path}`)"]
    if cell_sources(notebook_path) != cell_sources(twin):
        return [f"jupytext twin {twin} is stale (run `jupytext --sync {notebook_path}`)"]
    return []


# %% [markdown]
# The repository's own notebooks have up-to-date twins; one changed behind the twin's
# back is caught:

# %%
root = Path("..").resolve()
test_eq(twin_path(root / "nbs" / "00_config.ipynb", root), root / "nbs_py" / "00_config.py")
test_eq(twin_problems(root / "nbs" / "00_config.ipynb", root / "nbs_py" / "00_config.py"), [])
scratch = Path(tempfile.mkdtemp())
edited = jupytext.read(root / "nbs" / "00_config.ipynb")
edited.cells[-1].source += "\nprint('edited')"
jupytext.write(edited, scratch / "00_config.ipynb")
assert "stale" in twin_problems(scratch / "00_config.ipynb", root / "nbs_py" / "00_config.py")[0]
assert "no jupytext twin" in twin_problems(scratch / "00_config.ipynb", scratch / "missing.py")[0]


# %% [markdown]
# ## Checking a whole repository

# %%
#| export
def repository_notebooks(root: Path) -> list[Path]:
    "Every notebook under `nbs/`, skipping checkpoints and folders nbdev and Quarto ignore."
    notebooks = sorted((Path(root) / "nbs").rglob("*.ipynb"))
    return [path for path in notebooks
            if not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)]

def hygiene_problems(root: Path | str = ".",  # the repository root
                    ) -> list[str]:
    "Every rule 1 to 3 problem in the repository, one line each, naming the file."
    root = Path(root)
    problems = []
    notebooks = repository_notebooks(root)
    for path in notebooks:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        problems += [f"{path.relative_to(root)}: {problem}"
                     for problem in notebook_problems(notebook) + notebook_secrets(notebook)]
        problems += twin_problems(path, twin_path(path, root))
    twins = {twin_path(path, root).resolve() for path in notebooks}
    problems += [f"{twin.relative_to(root)}: a twin whose notebook is gone"
                 for twin in sorted((root / "nbs_py").rglob("*.py")) if twin.resolve() not in twins]
    return problems


# %%
test_eq(hygiene_problems(root), [])


# %% [markdown]
# ## Rule 4: the library and README are in sync
#
# The README is built from `nbs/index.ipynb` (its cells, without hidden ones, as
# Markdown) so that the landing page of the docs and of the repository say the same.
# The sync check then runs every generator and asks git what changed, untracked files
# included, comparing contents before and after: what a contributor forgot to
# regenerate shows up as a changed file, even a generated file they had edited by hand.

# %%
#| export
def write_readme(root: Path | str = ".") -> Path:
    "Write `README.md` from `nbs/index.ipynb`: its cells as Markdown, hidden cells left out."
    root = Path(root)
    notebook = jupytext.read(root / "nbs" / "index.ipynb")
    blocks = [cell.source if cell.cell_type == "markdown" else f"```python\n{cell.source}\n```"
              for cell in notebook.cells if "#| hide" not in cell.source]
    text = "\n\n".join(blocks) + "\n"
    readme = root / "README.md"
    readme.write_text("<!-- generated from nbs/index.ipynb by `dbxml check`: edit the notebook -->\n\n"
                      + text, encoding="utf-8")
    return readme


# %%
#| export
def regenerate(root: Path | str = ".") -> None:
    "Run every generator: `nbdev_clean`, `nbdev_export`, the README, the architecture page's diagrams."
    from dbxml.diagrams import write_diagrams  # the diagrams read the exported library: after nbdev_export

    tools = Path(sys.executable).parent
    environ = {key: value for key, value in os.environ.items() if key != "IN_TEST"}  # nbdev_export skips under it
    for tool in ("nbdev_clean", "nbdev_export"):
        subprocess.run([str(tools / tool)], cwd=root, check=True, capture_output=True, env=environ)
    write_readme(root)
    write_diagrams(root)

def changed_files(root: Path | str = ".") -> dict[str, str]:
    "What git sees changed or untracked under `root` (ignored files aside), each with a hash of its content."
    status = subprocess.run(["git", "status", "--porcelain", "-z", "--untracked-files=all", "--no-renames"],
                            cwd=root, check=True, capture_output=True, text=True).stdout
    paths = [entry[3:] for entry in status.split("\0") if entry]
    return {path: (hashlib.sha256((Path(root) / path).read_bytes()).hexdigest()
                   if (Path(root) / path).is_file() else "deleted") for path in paths}

def sync_problems(root: Path | str = ".") -> list[str]:
    "Files that regenerating changes: notebooks not cleaned, library not exported, README not rebuilt."
    before = changed_files(root)
    regenerate(root)
    after = changed_files(root)
    return [f"{path}: changed by nbdev_clean, nbdev_export or the README build; commit the result"
            for path in sorted(before | after) if before.get(path) != after.get(path)]


# %% [markdown]
# To show a rule failing, break a copy. `copy_repository` copies the working tree as it
# is (tracked files and new ones, ignored ones aside) into a fresh git repository with
# one commit; the tests in `tests/` use it the same way.

# %%
#| export
def git(*args: str, cwd: Path | str) -> str:
    "Run git in `cwd` with a throwaway identity (for copies made by tests); return its output."
    command = ["git", "-c", "user.name=dbxml", "-c", "user.email=dbxml@localhost", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout

def copy_repository(source: Path | str,  # a git working tree
                    destination: Path | str,  # a folder that does not exist yet
                   ) -> Path:
    "A new git repository at `destination` with `source`'s working tree (ignored files aside), committed."
    source, destination = Path(source), Path(destination)
    names = git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=source).split("\0")
    for name in filter(None, names):
        if (source / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, destination / name, follow_symlinks=False)  # a link stays a link
    git("init", "-q", cwd=destination)
    git("add", "-A", cwd=destination)
    git("commit", "-qm", f"copy of {source}", cwd=destination)
    return destination


# %%
#| slow
copy = copy_repository(root, Path(tempfile.mkdtemp()) / "repo")
test_eq(sync_problems(copy), [])
notebook = copy / "nbs" / "02_catalog.ipynb"
notebook.write_text(notebook.read_text().replace("def local_database(", "def local_database_renamed("))
test_eq([problem.split(":")[0] for problem in sync_problems(copy)], ["dbxml/_modidx.py", "dbxml/catalog.py"])

# %% [markdown]
# A hand edit of a generated file is caught too, even though regenerating undoes it:

# %%
#| slow
git("checkout", "-q", ".", cwd=copy)
generated = copy / "dbxml" / "tables.py"
generated.write_text(generated.read_text() + "\n# a quick fix, made in the wrong place\n")
test_eq([problem.split(":")[0] for problem in sync_problems(copy)], ["dbxml/tables.py"])

# %% [markdown]
# ## Fixing what can be fixed: `dbxml check --fix`
#
# A data scientist who edits a notebook in a Databricks Git folder and commits from
# there breaks rules 1, 3 and 4 at once: Databricks drops the cell ids and the
# kernelspec, adds its UI metadata (the notebook's name, widgets and their values,
# dashboards; a title and a `nuid` on every cell; result tables' state on outputs),
# and refreshes neither the twin nor the library. `dbxml check --fix` puts all of it
# back, so that what Databricks committed becomes what the repository keeps:
#
# - the Databricks UI metadata and widget state go;
# - every cell gets back the id it has in the last commit (`HEAD`), found by its type and
#   source, or by its place when it was edited in place; a new cell gets a new id. A
#   notebook saved with no change so comes back byte for byte, and the diff of an edited
#   one shows the edit only, even after a plain `dbxml check` (whose `nbdev_clean` gives
#   cells without an id a random one);
# - the kernelspec and jupytext settings come back from the last commit (a new notebook
#   gets the ones most of the repository's notebooks have), and so do the papermill
#   `parameters` tags that Databricks does not keep;
# - then `nbdev_clean`, `nbdev_export` and the README build run (rule 4), and every twin
#   that is missing or stale is rewritten from its notebook (rule 3).
#
# The first step, on the metadata Databricks adds:

# %%
#| export
DATABRICKS_OUTPUT_KEY = "application/vnd.databricks.v1+output"

def strip_databricks_metadata(notebook: dict,  # a notebook as parsed JSON
                             ) -> dict:
    "A copy of `notebook` without Databricks' UI metadata (on the notebook, its cells, their outputs) or widget state."
    notebook = deepcopy(notebook)
    metadata = notebook.setdefault("metadata", {})
    for key in (DATABRICKS_NOTEBOOK_KEY, "widgets"):
        metadata.pop(key, None)
    for cell in notebook.get("cells", []):
        cell.setdefault("metadata", {}).pop(DATABRICKS_CELL_KEY, None)
        for output in cell.get("outputs", []):
            output.get("metadata", {}).pop(DATABRICKS_OUTPUT_KEY, None)  # a result table's data and UI state
    return notebook


# %%
saved = {"metadata": {DATABRICKS_NOTEBOOK_KEY: {"notebookName": "02_catalog", "widgets": {}},
                      "language_info": {"name": "python"}},
         "cells": [{"cell_type": "code", "execution_count": 0, "source": ["x = 1"], "outputs": [
             {"output_type": "display_data", "data": {"text/plain": "1"},
              "metadata": {DATABRICKS_OUTPUT_KEY: {"addedWidgets": {}, "data": [[1]]}}}],
                    "metadata": {DATABRICKS_CELL_KEY: {"nuid": "5f0c", "showTitle": False, "title": ""}}}]}
stripped = strip_databricks_metadata(saved)
test_eq(stripped["metadata"], {"language_info": {"name": "python"}})  # nbdev_clean drops the rest
test_eq(stripped["cells"][0]["metadata"], {})
test_eq(stripped["cells"][0]["outputs"][0]["metadata"], {})
assert DATABRICKS_CELL_KEY in saved["cells"][0]["metadata"]  # the notebook given is left as it was


# %% [markdown]
# A cell is found in the committed notebook by its type and source. `difflib` lines the
# two lists of cells up, so a cell added, removed or moved does not shift every id after
# it; where as many cells were replaced as were there before, each was edited in place and
# keeps its id.

# %%
#| export
def cell_key(cell: dict,  # a cell as parsed JSON
            ) -> tuple[str, str]:
    "What finds a cell again: its type and source (Databricks may store the source as one string)."
    source = cell.get("source", "")
    return cell.get("cell_type", ""), ("".join(source) if isinstance(source, list) else source).strip()

def committed_counterparts(cells: list[dict],  # the cells as saved
                           committed: list[dict],  # the cells of the same notebook as last committed
                          ) -> list[dict | None]:
    "For each of `cells`, the committed cell it is, or the one it replaced in place; `None` for a new cell."
    matcher = difflib.SequenceMatcher(None, [cell_key(cell) for cell in committed], [cell_key(cell) for cell in cells],
                                      autojunk=False)
    counterparts = [None] * len(cells)
    for change, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        edited_in_place = change == "replace" and old_end - old_start == new_end - new_start
        if change == "equal" or edited_in_place:
            for old, new in zip(range(old_start, old_end), range(new_start, new_end), strict=True):
                if committed[old].get("cell_type") == cells[new].get("cell_type"):
                    counterparts[new] = committed[old]
    return counterparts


# %%
def make_cell(cell_type, source, id=None):
    return {"cell_type": cell_type, "source": source, "metadata": {}, **({"id": id} if id else {})}

committed_cells = [make_cell("markdown", "# Title", "m1"), make_cell("code", "x = 1", "c1"),
                   make_cell("code", "y = 2", "c2")]
test_eq(committed_counterparts([make_cell("markdown", ["# Title"]), make_cell("code", "x = 1")], committed_cells),
        committed_cells[:2])
# a new cell at the top, the second one edited: the others are found, the edited one replaced its old self
saved_cells = [make_cell("code", "import os"), make_cell("markdown", "# Title"), make_cell("code", "x = 10"),
               make_cell("code", "y = 2")]
test_eq([found and found["id"] for found in committed_counterparts(saved_cells, committed_cells)],
        [None, "m1", "c1", "c2"])


# %% [markdown]
# Ids are then taken from the counterparts, over any id a cell has: `nbdev_clean`, which a
# plain `dbxml check` runs, may have given it a random one. A new cell keeps the id it has,
# or gets a new one that no other cell has (eight hex digits, like nbdev's):

# %%
#| export
def new_cell_id(taken: set[str]) -> str:
    "A fresh cell id, not among `taken`: eight hex digits, like the ids nbdev and Jupyter give."
    while (cell_id := token_hex(4)) in taken:
        pass
    return cell_id

def restore_cells(notebook: dict,  # a notebook as parsed JSON
                  committed: dict | None,  # the same notebook as last committed; `None` if it is new
                 ) -> dict:
    "A copy of `notebook` whose every cell has an id, the committed cell's when there is one, and its papermill tags."
    notebook = deepcopy(notebook)
    cells = notebook.get("cells", [])
    counterparts = committed_counterparts(cells, (committed or {}).get("cells", []))
    taken = set()
    for cell, counterpart in zip(cells, counterparts, strict=True):
        metadata = cell.setdefault("metadata", {})
        if counterpart and "tags" in counterpart.get("metadata", {}) and "tags" not in metadata:
            metadata["tags"] = counterpart["metadata"]["tags"]  # Databricks keeps no Jupyter tags
        wanted = (counterpart or {}).get("id") or cell.get("id")
        cell["id"] = wanted if wanted and wanted not in taken else new_cell_id(taken)
        taken.add(cell["id"])
    if notebook.get("nbformat") == 4:
        notebook["nbformat_minor"] = max(notebook.get("nbformat_minor", 0), 5)  # cell ids came with 4.5
    return notebook


# %%
committed_cells[1]["metadata"] = {"tags": ["parameters"]}
saved_cells[-1]["id"] = "9f3e07aa"  # as nbdev_clean gives
restored = restore_cells({"nbformat": 4, "nbformat_minor": 0, "metadata": {}, "cells": saved_cells},
                         {"cells": committed_cells})
test_eq([restored_cell["id"] for restored_cell in restored["cells"]][1:], ["m1", "c1", "c2"])
assert re.fullmatch("[0-9a-f]{8}", restored["cells"][0]["id"])
test_eq(restore_cells({"cells": [make_cell("code", "new", "n1")]}, {"cells": committed_cells})["cells"][0]["id"], "n1")
test_eq(restored["cells"][2]["metadata"], {"tags": ["parameters"]})
test_eq(restored["nbformat_minor"], 5)
equal_new_cells = restore_cells({"cells": [make_cell("code", "a"), make_cell("code", "a")]}, None)["cells"]
test_eq(len({new_cell["id"] for new_cell in equal_new_cells}), 2)  # two equal new cells, two ids

# %% [markdown]
# The kernelspec and the jupytext settings come back from the committed notebook; a new
# notebook gets the ones the repository's notebooks have most:

# %%
#| export
RESTORED_METADATA = ("kernelspec", "jupytext")
PYTHON_KERNELSPEC = {"display_name": "python3", "language": "python", "name": "python3"}

def usual_metadata(root: Path | str = ".",  # the repository root
                  ) -> dict:
    "The kernelspec and jupytext settings most of the repository's notebooks have (a Python kernel if none has)."
    counts = Counter()
    for path in repository_notebooks(Path(root)):
        metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        counts.update((key, json.dumps(metadata[key], sort_keys=True)) for key in RESTORED_METADATA if key in metadata)
    usual = {}
    for (key, value), _ in counts.most_common():
        usual.setdefault(key, json.loads(value))
    return {"kernelspec": PYTHON_KERNELSPEC} | usual

def restore_metadata(notebook: dict,  # a notebook as parsed JSON
                     committed: dict | None,  # the same notebook as last committed; `None` if it is new
                     usual: dict,  # what `usual_metadata` found
                    ) -> dict:
    "A copy of `notebook` with the kernelspec and jupytext settings it was committed with, else the usual ones."
    notebook = deepcopy(notebook)
    metadata = notebook.setdefault("metadata", {})
    committed_metadata = (committed or {}).get("metadata", {})
    for key in RESTORED_METADATA:
        if key not in metadata and key in (committed_metadata.keys() | usual.keys()):
            metadata[key] = committed_metadata.get(key, usual.get(key))
    return notebook


# %%
usual = usual_metadata(root)
test_eq(usual["kernelspec"], PYTHON_KERNELSPEC)
test_eq(usual["jupytext"], {"cell_metadata_filter": "tags,-all"})
committed_kernel = {"name": "dbxml", "display_name": "dbxml", "language": "python"}
test_eq(restore_metadata({"metadata": {}}, {"metadata": {"kernelspec": committed_kernel}}, usual)["metadata"],
        {"kernelspec": committed_kernel, "jupytext": usual["jupytext"]})
test_eq(restore_metadata({}, None, usual)["metadata"], usual)


# %% [markdown]
# The three steps make one notebook clean by rule 1. Databricks' `language_info` and
# `execution_count` of 0 are left to `nbdev_clean`, which `--fix` runs next:

# %%
#| export
def fix_notebook(notebook: dict,  # a notebook as parsed JSON, e.g. as Databricks saved it
                 committed: dict | None,  # the same notebook as last committed; `None` if it is new
                 usual: dict,  # what `usual_metadata` found
                ) -> dict:
    "`notebook` without Databricks' UI metadata and widget state, its ids, tags, kernelspec and jupytext settings back."
    return restore_cells(restore_metadata(strip_databricks_metadata(notebook), committed, usual), committed)


# %%
test_eq(notebook_problems(from_databricks), ["no kernelspec (papermill cannot run it)", "1 cells without an id",
                                             "Databricks UI metadata (saved from a Databricks Git folder)",
                                             "widget state in the metadata"])
test_eq(notebook_problems(fix_notebook(from_databricks, None, usual)), [])
test_eq(notebook_problems(fix_notebook(saved, None, usual)), [])


# %% [markdown]
# On disk, the committed notebook is git's `HEAD`, and a twin is written from its
# notebook with the repository's jupytext settings. Not `jupytext --sync`: it takes the
# cells from whichever file was modified last, and a twin can well be newer than a
# notebook just pulled from Databricks.

# %%
#| export
def committed_notebook(path: Path,  # a notebook in the repository
                       root: Path | str = ".",  # the repository root
                      ) -> dict | None:
    "The notebook at `path` as committed in git's `HEAD`; `None` when it is new or nothing is committed."
    relative = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    shown = subprocess.run(["git", "show", f"HEAD:./{relative}"], cwd=root, capture_output=True, encoding="utf-8")
    return json.loads(shown.stdout) if shown.returncode == 0 else None

def write_twin(notebook_path: Path,  # a notebook under `nbs/`
               root: Path | str = ".",  # the repository root
              ) -> Path:
    "Write the `py:percent` twin of `notebook_path` from the notebook, as the repository's jupytext settings say."
    twin = twin_path(notebook_path, root)
    with warnings.catch_warnings():  # nbformat's about ids, when the notebook has none yet
        warnings.simplefilter("ignore")
        notebook = jupytext.read(notebook_path)
    twin.parent.mkdir(parents=True, exist_ok=True)
    config = load_jupytext_config(str(Path(notebook_path).resolve()))
    twin.write_text(jupytext.writes(notebook, fmt="py:percent", config=config), encoding="utf-8")
    return twin


# %%
test_eq(committed_notebook(root / "nbs" / "02_catalog.ipynb", root)["cells"][0]["id"],
        json.loads((root / "nbs" / "02_catalog.ipynb").read_text())["cells"][0]["id"])
test_eq(committed_notebook(root / "nbs" / "not_yet_committed.ipynb", root), None)
twin_copy = Path(tempfile.mkdtemp())
(twin_copy / "nbs").mkdir()
shutil.copy(root / "nbs" / "02_catalog.ipynb", twin_copy / "nbs")
shutil.copy(root / "pyproject.toml", twin_copy)  # where the jupytext settings are
test_eq(write_twin(twin_copy / "nbs" / "02_catalog.ipynb", twin_copy).read_text(),
        (root / "nbs_py" / "02_catalog.py").read_text())


# %% [markdown]
# The whole repository: every notebook rule 1 fails is fixed, then the generators run,
# then stale twins are rewritten. Each changed file is named once, with what was done to
# it. A token or key stops it before it changes anything: clearing one is a person's
# job, and so is revoking it (stripping widget state could take one out of the file, but
# not out of the commit Databricks made).

# %%
#| export
def fix_repository(root: Path | str = ".",  # the repository root, a git working tree
                  ) -> list[str]:
    "Fix what rules 1, 3 and 4 found (see above); return one line per file changed. Refuses while a secret is found."
    root = Path(root)
    notebooks = {path: json.loads(path.read_text(encoding="utf-8")) for path in repository_notebooks(root)}
    secrets_found = [f"{path.relative_to(root)}: {found.split(';')[0]}"
                     for path, notebook in notebooks.items() for found in notebook_secrets(notebook)]
    if secrets_found:
        raise DbxmlError(f"--fix changed nothing: a token or key is in {'; '.join(secrets_found)}. Clear it by hand "
                         "(and revoke the credential if it is real), then run `dbxml check --fix` again.")
    before = changed_files(root)
    done, usual = {}, usual_metadata(root)
    for path, notebook in notebooks.items():
        if problems := notebook_problems(notebook):
            fixed = fix_notebook(notebook, committed_notebook(path, root), usual)
            # written as Jupyter writes: sources as lists of lines (Databricks may store one string), keys sorted
            path.write_text(nbformat.writes(nbformat.from_dict(fixed)) + "\n", encoding="utf-8")
            done[path.relative_to(root).as_posix()] = "fixed " + "; ".join(problems)
    regenerate(root)
    for path in notebooks:
        if twin_problems(path, twin_path(path, root)):
            done[write_twin(path, root).relative_to(root).as_posix()] = f"rewritten from {path.relative_to(root)}"
    after = changed_files(root)
    return [f"{path}: {done.get(path, 'regenerated by nbdev_clean, nbdev_export or the README build')}"
            for path in sorted(before | after) if before.get(path) != after.get(path)]

# %% [markdown]
# `tests/test_repository_rules.py` fixes a notebook of this repository saved the way
# Databricks saves it, with and without an edit, and shows a secret stopping the fix.
