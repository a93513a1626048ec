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
from dbxml.tasks import train_task

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target
month = "2013-02"  # the held-out month; training reads the months before it
window = 3  # how many months to learn from

# %%
params = job_parameters(target_name=target_name, month=month, window=window)

# %%
#| job
values = train_task(load_target(params["target_name"]), params["month"], params["window"])
set_task_values(**values)
