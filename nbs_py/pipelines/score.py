# %% [markdown]
# # Score task
# > Score the month's flights with the champion model into the predictions table.
#
# Before the first model is promoted there is nothing to score with, and the task says
# so and succeeds: the monitor task then decides to train the first model. Scoring
# replaces the month's predictions, so a rerun leaves one prediction per flight.

# %%
from dbxml.config import load_target
from dbxml.params import job_parameters, set_task_values
from dbxml.tasks import score_task

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target
month = "2013-01"  # the month to score, YYYY-MM

# %%
params = job_parameters(target_name=target_name, month=month)

# %%
#| job
values = score_task(load_target(params["target_name"]), params["month"])
set_task_values(**values)
