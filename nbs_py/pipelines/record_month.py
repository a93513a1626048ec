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
from dbxml.spark import get_spark
from dbxml.watermark import record_month

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target
month = ""  # the month the lakehouse task built (empty: there was nothing new)
volume = "ok"  # the lakehouse task's volume finding
run = "local"  # the job run's id

# %%
params = job_parameters(target_name=target_name, month=month, volume=volume, run=run)

# %%
#| job
if not params["month"]:
    print("nothing new: nothing to record")
else:
    target = load_target(params["target_name"])
    record_month(get_spark(target), target, params["month"], params["volume"], params["run"])
    print(f"{params['month']} processed: the next scheduled run takes the month after it")
    set_task_values(recorded=params["month"])
