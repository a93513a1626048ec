# %% [markdown]
# # The tasks
# > What one month does, written once: each task of the monthly job is one function here,
# > the month and its settings in, the task values out.
#
# The monthly job (`resources/monthly_job.yml`) is a graph of tasks: the lakehouse, then
# score, monitor, train, promote, and the watermark. Each task is one function in this
# module. Three things run those functions and nothing else:
#
# - a pipeline notebook in `nbs/pipelines/`, which is its parameters cell, one call to
#   its function, and the task values it hands on (on Databricks, and under `dbxml run`);
# - the in-process executor of [the runner](32_runner.ipynb), which walks the same graph
#   in one Python process (`dbxml run --in-process`, the tests, the benchmark);
# - the examples on this page, which run the graph in-process on a scratch lakehouse.
#
# A function gets a target, never a Spark session: it asks for the target's session
# (`get_spark`), which is the workspace's own on Databricks and the one local session
# of this process otherwise. What it returns is exactly what its notebook hands on:
# plain values that the job's conditions and the tasks after it read.

# %%
#| default_exp tasks

# %%
#| export
from __future__ import annotations

from dbxml.config import Target
from dbxml.lakehouse import check_landing, run_lakehouse
from dbxml.monitor import Monitoring, monitor_month
from dbxml.registry import alias_version, promote, register, validate
from dbxml.score import score_month
from dbxml.spark import get_spark
from dbxml.train import NoLabelledRows, labelled_rows, train_model, training_months
from dbxml.usecase import use_case_of
from dbxml.watermark import NEXT, record_month, resolve_month

# %%
#| hide
from fastcore.test import test_eq

from dbxml.config import scratch_target, with_overrides
from dbxml.flights import FLIGHTS
from dbxml.lakehouse import cached_lakehouse
from dbxml.monitor import BASELINES_SPEC, monitoring_spec
from dbxml.registry import champion_history
from dbxml.runner import run_job
from dbxml.score import predictions_spec
from dbxml.sources import parse_months
from dbxml.tables import content_digest


# %% [markdown]
# ## The lakehouse task
#
# A scheduled run passes `month=next`: whatever has arrived is landed, and the task takes
# the oldest landed month that is not processed yet ([the watermark](16_watermark.ipynb)).
# An explicit month is checked against the landing contract before Spark starts. The
# task values say which month was built, its counts, and its `volume` (`ok`, `empty`,
# `short`), which the job's `month_complete` condition reads; `none` when there was
# nothing new, and the run ends there, successfully.

# %%
#| export
def lakehouse_task(target: Target,
                   month: str,  # `YYYY-MM`, or `next`: the oldest landed month not processed yet
                  ) -> dict:
    "Land and check the month's files, then bronze, silver and gold for it; its counts as task values."
    land = use_case_of(target).land
    if month == NEXT and land:
        land(target)  # whatever has arrived, so that the next month can be found
    else:
        check_landing(target, [month])  # every file the month needs, before Spark starts
    chosen = resolve_month(get_spark(target), target, month)
    if chosen is None:
        print("nothing new: every month that has landed is processed")
        return {"month": "", "volume": "none", "state": "nothing new"}
    if month == NEXT:
        print(f"next month: {chosen}")
    counts = run_lakehouse(get_spark(target), target, [chosen])[0]
    return {"month": chosen, "rows": counts["features"], "bronze": counts["bronze"], "silver": counts["silver"],
            "quarantined": counts["quarantined"], "mart_rows": counts["mart_rows"], "volume": counts["volume"],
            "state": counts["state"]}


# %% [markdown]
# ## Score and monitor
#
# Before the first model there is nothing to score with, and the score task says so and
# succeeds. The monitor task decides whether to train: with no champion, as soon as an
# earlier month has labelled flights to learn from (`first model`); with a champion,
# when monitoring the month raised the retrain signal (`dbxml.monitor.DriftPolicy`) and
# there is something to retrain on. Its figures come from the month it just monitored.

# %%
#| export
def score_task(target: Target,
               month: str,  # a built month, `YYYY-MM`
              ) -> dict:
    "Score the month's flights with the champion (nothing before the first model)."
    if alias_version(target) is None:
        print("no champion yet: nothing to score")
        return {"rows": 0}
    scored = score_month(get_spark(target), target, month)
    print(f"scored {scored['predictions']} flights with version {scored['model_version']}")
    return {"rows": scored["predictions"], "model_version": scored["model_version"]}


# %%
#| export
def retrain_decision(found: Monitoring | None,  # the month's monitoring; None when there is no champion yet
                     has_history: bool,  # whether the months before it have labelled rows to learn from
                    ) -> tuple[bool, str]:
    "Whether to train a model now, and why."
    if found is None:
        return (True, "first model") if has_history else (False, "no earlier month to learn from")
    if found.retrain and not has_history:
        return False, found.reason + "; no earlier month to retrain on"
    return found.retrain, found.reason


# %% [markdown]
# A signal in a month with nothing before it is recorded, not acted on:

# %%
drifted = Monitoring("2013-01", "1", {"origin": 0.4}, {"origin": 0.2}, None, ["origin shifted (PSI 0.40 >= 0.25)"])
test_eq(retrain_decision(drifted, has_history=True), (True, "origin shifted (PSI 0.40 >= 0.25)"))
test_eq(retrain_decision(drifted, has_history=False),
        (False, "origin shifted (PSI 0.40 >= 0.25); no earlier month to retrain on"))
test_eq(retrain_decision(None, has_history=True), (True, "first model"))
test_eq(retrain_decision(None, has_history=False), (False, "no earlier month to learn from"))


# %%
#| export
def _has_history(target: Target, month: str, window: int) -> bool:
    "Whether any of the `window` months before `month` has labelled rows to learn from."
    try:
        labelled_rows(get_spark(target), target, training_months(month, window))
    except NoLabelledRows:
        return False
    return True

def monitor_task(target: Target,
                 month: str,  # a scored month (or any built month while there is no champion)
                 window: int = 3,  # months a retrain would learn from
                ) -> dict:
    "Monitor the champion on `month` and decide whether to train: `retrain`, `reason` and the month's figures."
    found = None if alias_version(target) is None else monitor_month(get_spark(target), target, month)
    needs_history = found is None or found.retrain
    retrain, reason = retrain_decision(found, needs_history and _has_history(target, month, window))
    values = {"retrain": retrain, "reason": reason}
    if found is not None:
        values["max_psi"] = round(max(found.drift.values()), 4)
    if found is not None and found.performance:
        values["roc_auc"] = round(found.performance["roc_auc"], 4)
    print(("retrain: " if retrain else "no retrain: ") + reason)
    return values


# %% [markdown]
# ## Train and promote
#
# Training holds out `month` and learns from the `window` months before it; the model is
# registered as the challenger. The promote task judges it against the champion on the
# held-out month and promotes it only if it passes the promotion policy, recording why
# it was trained (`2013-02: first model`). A rejected challenger is not a failed task.

# %%
#| export
def train_task(target: Target,
               month: str,  # the held-out month; training reads the months before it
               window: int = 3,  # how many months to learn from
              ) -> dict:
    "Train a challenger held out on `month` and register it: its `model_version` and ROC AUC."
    trained = train_model(get_spark(target), target, month, window)
    version = register(target, trained)
    print(f"registered version {version}, trained on {', '.join(trained.training.months)}: ROC AUC "
          f"{trained.metrics['roc_auc']:.4f} on {month}")
    return {"model_version": version, "roc_auc": round(trained.metrics["roc_auc"], 4)}

def promote_task(target: Target,
                 month: str,  # the held-out month the challenger was trained for
                 model_version: str,  # the challenger's version (the train task's value)
                 why: str,  # why it was trained (the monitor task's reason), recorded on a promoted version
                ) -> dict:
    "Validate the challenger against the champion on `month`; promote it if it passes."
    decision = validate(get_spark(target), target, model_version, month)
    promoted = promote(target, decision, f"{month}: {why}")
    print(f"version {decision.challenger}: " + ("promoted to champion" if promoted
                                                else "rejected: " + "; ".join(decision.reasons)))
    champion_auc = decision.champion_metrics and round(decision.champion_metrics["roc_auc"], 4)
    return {"model_version": decision.challenger, "promoted": promoted,
            "roc_auc": round(decision.challenger_metrics["roc_auc"], 4), "champion_roc_auc": champion_auc}


# %% [markdown]
# ## The watermark
#
# The last task adds the month to `processed_months`, so the schedule does not pick it
# again. The job runs it only when no task before it failed.

# %%
#| export
def record_month_task(target: Target,
                      month: str,  # the month the lakehouse task built (empty: there was nothing new)
                      volume: str = "ok",  # the lakehouse task's volume finding
                      run: str = "local",  # the job run's id
                     ) -> dict:
    "Add the month to the watermark; nothing to record when there was nothing new."
    if not month:
        print("nothing new: nothing to record")
        return {}
    record_month(get_spark(target), target, month, volume, run)
    print(f"{month} processed: the next scheduled run takes the month after it")
    return {"recorded": month}


# %% [markdown]
# ## By notebook
#
# The executors find a task's function by its notebook's name: `nbs/pipelines/score.ipynb`
# is `score_task`. A test checks that every notebook task of the bundle has its function,
# that the function takes exactly the notebook's parameters (the target for
# `target_name`), and that the notebook calls it.

# %%
#| export
TASKS = {"lakehouse": lakehouse_task, "score": score_task, "monitor": monitor_task, "train": train_task,
         "promote": promote_task, "record_month": record_month_task}

# %% [markdown]
# ## Example: a first quarter, in-process
#
# The in-process executor runs the job graph of the bundle, with these functions, on a
# scratch lakehouse: the examples' copy of the real quarter (`cached_lakehouse`), so each
# month's `lakehouse` task finds its tables built and the example's time goes to the model.
# (`dbxml run --in-process` building a month is `tests/test_jobs.py`'s scheduled run.)
# January has nothing before it; February trains the first model (held out on February,
# learning from January) and promotes it; March is scored and monitored by it.

# %%
scratch = with_overrides(scratch_target(), schema="tasks")  # own tables and model: notebooks may share a home
cached_lakehouse(get_spark(scratch), scratch, parse_months("2013-01..2013-03"))
quarter = run_job(scratch, overrides={"month": "2013-01..2013-03", "window": "1"}, in_process=True)
values = {(result.run, result.task): result.values for result in quarter.results}
test_eq(quarter.failed, [])
test_eq(values["2013-01", "monitor"], {"retrain": False, "reason": "no earlier month to learn from"})
test_eq((values["2013-01", "score"], values["2013-01", "train"]), ({"rows": 0}, {}))  # no champion; train excluded
test_eq(values["2013-01", "record_month"], {"recorded": "2013-01"})
test_eq([values[month, "lakehouse"]["state"] for month in ("2013-01", "2013-02", "2013-03")], ["unchanged"] * 3)
test_eq(values["2013-02", "monitor"], {"retrain": True, "reason": "first model"})
test_eq((values["2013-02", "train"]["model_version"], values["2013-02", "promote"]["promoted"]), ("1", True))
test_eq(values["2013-03", "score"], {"rows": 28_834, "model_version": "1"})
assert values["2013-03", "monitor"]["max_psi"] >= 0 and 0.5 < values["2013-03", "monitor"]["roc_auc"] < 1
test_eq(champion_history(scratch)["reason"].tolist()[0], "2013-02: first model")

# %% [markdown]
# Asked for March again, the runner skips it: the watermark holds it. Run anyway
# (`again=True`), it changes nothing it should not: the lakehouse finds the month
# unchanged, the same champion scores the same flights, monitoring decides the same, and
# the predictions, monitoring and baselines tables hold the same rows (only the times they
# were written differ).

# %%
spark = get_spark(scratch)
written = [spec.on(scratch).name for spec in (predictions_spec(FLIGHTS), monitoring_spec(FLIGHTS), BASELINES_SPEC)]
when = ("scored_at", "monitored_at")
before = [content_digest(spark, name, when) for name in written]
skipped = run_job(scratch, overrides={"month": "2013-03", "window": "1"}, in_process=True)
test_eq((skipped.skipped, skipped.results), (["2013-03"], []))
again = run_job(scratch, overrides={"month": "2013-03", "window": "1"}, in_process=True, again=True)
rerun = {result.task: result.values for result in again.results}
test_eq(rerun["lakehouse"]["state"], "unchanged")
test_eq(rerun["score"], values["2013-03", "score"])
test_eq(rerun["monitor"], values["2013-03", "monitor"])
test_eq([content_digest(spark, name, when) for name in written], before)
