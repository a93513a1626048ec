# %% [markdown]
# # dbxml
# > A notebook-native MLOps foundation for Azure Databricks: lakehouse, MLflow and
# > deployment as literate code that runs on your laptop first.
#
# dbxml is a repository to fork. The notebooks in `nbs/` are the single source of the
# `dbxml` Python package, its tests and this documentation. The same notebooks run on
# this machine (local Spark with Delta Lake, MLflow on SQLite, no cloud account) and on
# Azure Databricks (Unity Catalog, workspace MLflow), deployed by a Databricks bundle.
#
# ## Quick start
#
# Prerequisites: **Python 3.10 to 3.12**, **Java 17** (local Spark needs it), `make`,
# `git`, and access to PyPI and Maven Central (Delta Lake's jars are fetched once, then
# cached). The commands check these and say what is missing.
#
# From a fresh clone, two commands:
#
# ```sh
# make run    # install into .venv, then run the main job on the local target
# make test   # install into .venv, then run every check, notebook and test
# ```
#
# `make run` runs the main job on the default `local` target. Today that is the smoke
# job: it writes a Delta table, reads it back and logs an MLflow run, all under
# `.dbxml/` in the repository. Later stages replace it with the full pipeline.
# `make test` is exactly what CI runs (`.ci/run`).
#
# Everything a local run writes lives in `.dbxml/`: the Delta warehouse, the Hive
# metastore, the MLflow store. Delete that folder to start again.
#
# ## Where things live
#
# | path | what |
# |---|---|
# | `nbs/` | the notebooks: the single source of package, tests and docs |
# | `nbs_py/` | the jupytext `py:percent` twin of every notebook, for reviewable diffs |
# | `dbxml/` | the package, exported from `nbs/` by `nbdev_export` (never edit by hand) |
# | `dbxml.toml` | the targets: `local`, `connect`, `dev`, `staging`, `prod` |
# | `tests/` | what a notebook cannot hold: end to end, repository rules, contracts |
# | `settings.ini`, `setup.py` | nbdev 2 settings and packaging |
# | `constraints.txt` | the lock: exact versions of every dependency |
# | `.github/workflows/` | CI and the docs site |
#
# ## Working on dbxml
#
# Edit a notebook (in JupyterLab, VS Code or a Databricks Git folder), then:
#
# ```sh
# .venv/bin/nbdev_export      # notebooks -> dbxml/
# .venv/bin/jupytext --sync nbs/*.ipynb   # refresh the py:percent twins
# make check                  # ruff and the notebook hygiene rules, as CI runs them
# ```
#
# `.venv/bin/pre-commit install` runs the same rules on every commit.
