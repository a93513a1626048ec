# %% [markdown]
# # Tracking
# > Point MLflow at the target's tracking server and model registry, and keep every
# > artifact where the target says.
#
# Locally MLflow keeps runs and registered models in a SQLite file under the target's
# home. One trap: MLflow puts a new experiment's artifacts in `./mlruns` relative to
# wherever the process started, so a notebook run from `nbs/` would scatter files.
# dbxml creates its experiments with an artifact location under the home. On
# Databricks, tracking is the workspace (`databricks`) and the registry is Unity
# Catalog (`databricks-uc`); experiment names are workspace paths, which is why dbxml
# names experiments `/Shared/dbxml/...` on every target.

# %%
#| default_exp tracking

# %%
#| export
from __future__ import annotations

import os
from pathlib import Path

from dbxml.config import Target

# %%
#| hide
import mlflow
from fastcore.test import test_eq

from dbxml.config import scratch_target


# %%
#| export
def use_mlflow(target: Target) -> None:
    "Point this process's MLflow client at the target's tracking server and model registry."
    import mlflow

    # a progress bar per downloaded model would flood job logs and executed notebooks
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(target.mlflow_tracking_uri)
    mlflow.set_registry_uri(target.mlflow_registry_uri)


# %%
#| export
def ensure_experiment(target: Target,  # where to track
                      name: str,  # workspace-style path, e.g. `/Shared/dbxml/smoke`
                     ) -> str:
    "The id of experiment `name`, created if missing, with local artifacts under the target's home."
    import mlflow

    use_mlflow(target)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = (Path(target.home) / "mlartifacts" / name.strip("/")).as_uri() if target.is_local else None
    return mlflow.create_experiment(name, artifact_location=artifacts)


# %% [markdown]
# A run in a scratch home keeps its artifacts there, and a second call finds the same
# experiment:

# %%
scratch = scratch_target()
experiment_id = ensure_experiment(scratch, "/Shared/dbxml/example")
test_eq(ensure_experiment(scratch, "/Shared/dbxml/example"), experiment_id)
with mlflow.start_run(experiment_id=experiment_id) as run:
    mlflow.log_text("hello", "hello.txt")
assert Path(run.info.artifact_uri.removeprefix("file://"), "hello.txt").is_file()
assert run.info.artifact_uri.startswith(scratch.home.as_uri())
test_eq(mlflow.get_tracking_uri(), scratch.mlflow_tracking_uri)
