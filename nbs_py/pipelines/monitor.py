# %% [markdown]
# # Monitor task
# > Measure the champion's drift and performance on the month, and decide whether to
# > train a new model.
#
# The decision is the task value `retrain` (`true` or `false`) with its `reason`; the
# job's condition task `retrain_needed` reads it, so training runs only when monitoring
# asked for it (or when there is no champion yet and an earlier month to learn from).
# The thresholds are code: `dbxml.monitor.DriftPolicy`.

# %%
from dbxml.config import load_target
from dbxml.params import job_parameters, set_task_values
from dbxml.tasks import monitor_task

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target
month = "2013-01"  # the scored month, YYYY-MM
window = 3  # months a retrain would learn from

# %%
params = job_parameters(target_name=target_name, month=month, window=window)

# %%
#| job
values = monitor_task(load_target(params["target_name"]), params["month"], params["window"])
set_task_values(**values)
