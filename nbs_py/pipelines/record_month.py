# %% [markdown]
# # Record-month task
# > The last task of the monthly job: add the month to the watermark, so that a
# > scheduled run does not pick it again.
#
# It runs only when no task of the run failed (`run_if: NONE_FAILED` in the job graph):
# a month whose run failed stays unprocessed, and the next scheduled run tries it again.
# A month with no retrain, or an empty month the job stopped early on, is processed.
# See [the watermark](../16_watermark.ipynb).

# %%
from dbxml.config import load_target
from dbxml.params import job_parameters, set_task_values
from dbxml.tasks import record_month_task

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target
month = ""  # the month the lakehouse task built (empty: there was nothing new)
volume = "ok"  # the lakehouse task's volume finding
run = "local"  # the job run's id

# %%
params = job_parameters(target_name=target_name, month=month, volume=volume, run=run)

# %%
#| job
values = record_month_task(load_target(params["target_name"]), params["month"], params["volume"], params["run"])
set_task_values(**values)
