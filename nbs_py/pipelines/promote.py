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
from dbxml.registry import promote, validate
from dbxml.spark import get_spark

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target
month = "2013-02"  # the held-out month the challenger was trained for
model_version = ""  # the challenger's version (the train task's value)
why = "manual run"  # why it was trained, recorded on a promoted version

# %%
params = job_parameters(target_name=target_name, month=month, model_version=model_version, why=why)

# %%
#| job
target = load_target(params["target_name"])
decision = validate(get_spark(target), target, params["model_version"], params["month"])
promoted = promote(target, decision, f"{params['month']}: {params['why']}")
print(f"version {decision.challenger}: " + ("promoted to champion" if promoted else "rejected: "
                                             + "; ".join(decision.reasons)))
champion_auc = decision.champion_metrics and round(decision.champion_metrics["roc_auc"], 4)
set_task_values(model_version=decision.challenger, promoted=promoted,
                roc_auc=round(decision.challenger_metrics["roc_auc"], 4), champion_roc_auc=champion_auc)
