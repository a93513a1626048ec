# %% [markdown]
# # Train task
# > Train a challenger on the months before this one and register it.
#
# Runs only when the monitor task asked for it. The model is logged to MLflow with its
# metrics on the held-out month, its figures and the Delta versions it read, then
# registered with the `challenger` alias. Its version is the task value `model_version`,
# which the promote task receives as a parameter.

# %%
from dbxml.config import load_target
from dbxml.params import job_parameters, set_task_values
from dbxml.registry import register
from dbxml.spark import get_spark
from dbxml.train import train_model

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target
month = "2013-02"  # the held-out month; training reads the months before it
window = 3  # how many months to learn from

# %%
params = job_parameters(target_name=target_name, month=month, window=window)

# %%
#| job
target = load_target(params["target_name"])
trained = train_model(get_spark(target), target, params["month"], params["window"])
version = register(target, trained)
print(f"registered version {version}, trained on {', '.join(trained.training.months)}: ROC AUC "
      f"{trained.metrics['roc_auc']:.4f} on {params['month']}")
set_task_values(model_version=version, roc_auc=round(trained.metrics["roc_auc"], 4))
