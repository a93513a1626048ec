# %% [markdown]
# # Promote task
# > Judge the challenger against the champion on the held-out month, and promote it only
# > if it passes the promotion policy.
#
# Both models are loaded from the registry and scored on the same month; the decision is
# an MLflow run and tags on the version. A worse model never becomes champion
# (`dbxml.registry.PromotionPolicy`); a rejected challenger is not a failed task.

# %%
from dbxml.config import load_target
from dbxml.params import job_parameters, set_task_values
from dbxml.tasks import promote_task

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target
month = "2013-02"  # the held-out month the challenger was trained for
model_version = ""  # the challenger's version (the train task's value)
why = "manual run"  # why it was trained, recorded on a promoted version

# %%
params = job_parameters(target_name=target_name, month=month, model_version=model_version, why=why)

# %%
#| job
values = promote_task(load_target(params["target_name"]), params["month"], params["model_version"], params["why"])
set_task_values(**values)
