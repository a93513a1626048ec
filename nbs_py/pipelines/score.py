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
from dbxml.registry import alias_version
from dbxml.score import score_month
from dbxml.spark import get_spark

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target
month = "2013-01"  # the month to score, YYYY-MM

# %%
params = job_parameters(target_name=target_name, month=month)

# %%
#| job
target = load_target(params["target_name"])
if alias_version(target) is None:
    print("no champion yet: nothing to score")
    set_task_values(rows=0)
else:
    scored = score_month(get_spark(target), target, params["month"])
    print(f"scored {scored['predictions']} flights with version {scored['model_version']}")
    set_task_values(rows=scored["predictions"], model_version=scored["model_version"])
