# %% [markdown]
# # Lakehouse task
# > The first task of the monthly job: land the month's raw files, then bronze, silver
# > and gold for that month.
#
# A pipeline notebook is a job task, not a library page: it declares its parameters,
# calls the library, and hands its results to the tasks after it. The same notebook runs
# locally under `dbxml run` (papermill) and on Databricks as a task of the bundle's
# `monthly` job (`resources/monthly_job.yml`). Every step is safe to rerun: files land
# atomically, a bronze batch that is already there is not written again, and silver
# and gold replace the month, or write nothing when its inputs are unchanged. A month
# whose files break the landing contract is refused before Spark starts; an empty or
# short month sets the task value `volume` (`empty`, `short`; else `ok`), which the job
# graph reads (the `month_complete` condition), or fails the task when the volume rule
# says `fail`.
#
# A scheduled run passes `month=next`: the task picks the oldest landed month that is
# not processed yet ([the watermark](../16_watermark.ipynb)) and hands it to the tasks
# after it as the task value `month`. When every landed month is processed it says
# there is nothing new, sets `volume` to `none`, and the run ends there, successfully.

# %%
from dbxml.config import load_target
from dbxml.params import job_parameters, set_task_values
from dbxml.tasks import lakehouse_task

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target (dev, staging, prod)
month = "next"  # the month to build, YYYY-MM; `next`: the oldest landed month not processed yet

# %%
params = job_parameters(target_name=target_name, month=month)

# %%
#| job
values = lakehouse_task(load_target(params["target_name"]), params["month"])
set_task_values(**values)
