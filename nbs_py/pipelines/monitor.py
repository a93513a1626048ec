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
from dbxml.lifecycle import monitor_and_decide
from dbxml.monitor import monitoring_history
from dbxml.params import job_parameters, set_task_values
from dbxml.registry import alias_version
from dbxml.spark import get_spark

# %% tags=["parameters"]
target_name = "local"  # a target of dbxml.toml; on Databricks the bundle target
month = "2013-01"  # the scored month, YYYY-MM
window = 3  # months a retrain would learn from

# %%
params = job_parameters(target_name=target_name, month=month, window=window)

# %%
#| job
target = load_target(params["target_name"])
spark = get_spark(target)
retrain, reason = monitor_and_decide(spark, target, params["month"], params["window"])
print(("retrain: " if retrain else "no retrain: ") + reason)
found = {}
if alias_version(target) is not None:
    history = monitoring_history(spark, target)
    month_rows = history[history["month"] == params["month"]]
    drift = month_rows[month_rows["statistic"] == "psi"]
    found = {"max_psi": round(float(drift["value"].max()), 4)} if len(drift) else {}
    auc = month_rows[(month_rows["statistic"] == "roc_auc")]
    found |= {"roc_auc": round(float(auc["value"].iloc[0]), 4)} if len(auc) else {}
set_task_values(retrain=retrain, reason=reason, **found)
