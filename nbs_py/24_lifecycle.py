# %% [markdown]
# # The model lifecycle
# > Month after month: score with the champion, monitor, and when monitoring says so,
# > retrain, validate and maybe promote.
#
# This is the machine-learning half of the main job, one month at a time, the way
# months arrive. With no champion yet, the first month that has an earlier month to
# learn from trains the first model (held out on that month). From then on each month
# is scored by the champion and monitored; if monitoring raises the retrain signal, a
# challenger is trained on the months before it, judged against the champion on that
# same month, and promoted only if it passes. Nothing is retrained on a calendar.
#
# Every step is the stage notebook's own function, so running a range here and
# running the stage notebooks one by one (as the job graph does) write the same tables
# and the same registry.

# %%
#| default_exp lifecycle

# %%
#| export
from __future__ import annotations

import time

from pyspark.sql import SparkSession

from dbxml.config import Target
from dbxml.monitor import DRIFT_POLICY, DriftPolicy, monitor_month, retrain_signal
from dbxml.registry import POLICY, PromotionPolicy, alias_version, promote, register, validate
from dbxml.score import score_month
from dbxml.train import NoLabelledRows, labelled_rows, train_model, training_months

# %%
#| hide
from fastcore.test import test_eq

from dbxml.config import scratch_target, with_overrides
from dbxml.lakehouse import parse_months, run_lakehouse
from dbxml.monitor import monitoring_figure, monitoring_history
from dbxml.registry import champion_history
from dbxml.spark import get_spark


# %% [markdown]
# ## Training a challenger
#
# One function trains on the months before `month`, registers the result as the
# challenger, validates it on `month` against the champion, and promotes it if it
# passes, with `why` recorded on the version.

# %%
#| export
def challenge(spark: SparkSession, target: Target,
              month: str,  # the held-out month; training reads the `window` months before it
              why: str,  # why this training happens, recorded on a promoted version
              window: int = 3,
              policy: PromotionPolicy = POLICY,
             ) -> dict:
    "Train, register, validate and maybe promote a challenger held out on `month`."
    trained = train_model(spark, target, month, window)
    version = register(target, trained)
    decision = validate(spark, target, version, month, policy)
    promoted = promote(target, decision, why)
    return {"trained_on": ",".join(trained.training.months), "challenger": version, "promoted": promoted,
            "challenger_roc_auc": decision.challenger_metrics["roc_auc"],
            "champion_roc_auc": decision.champion_metrics and decision.champion_metrics["roc_auc"],
            "decision": "; ".join(decision.reasons) or "passed"}


# %% [markdown]
# ## A month of the lifecycle

# %%
#| export
def has_history(spark: SparkSession, target: Target, month: str, window: int) -> bool:
    "Whether any of the `window` months before `month` has labelled rows to learn from."
    try:
        labelled_rows(spark, target, training_months(month, window))
    except NoLabelledRows:
        return False
    return True

def monitor_and_decide(spark: SparkSession, target: Target,
                       month: str,  # a scored month (or any built month while there is no champion)
                       window: int = 3,  # training months a retrain would use
                       drift_policy: DriftPolicy = DRIFT_POLICY,
                      ) -> tuple[bool, str]:
    "Monitor `month` if a champion scored it, and say whether to train a model now, and why."
    if alias_version(target) is None:
        if has_history(spark, target, month, window):
            return True, "first model"
        return False, "no earlier month to learn from"
    monitor_month(spark, target, month, drift_policy)
    retrain, reason = retrain_signal(spark, target, month)
    if retrain and not has_history(spark, target, month, window):
        return False, reason + "; no earlier month to retrain on"
    return retrain, reason

def lifecycle_month(spark: SparkSession, target: Target,
                    month: str,  # a month whose gold rows are built, `YYYY-MM`
                    window: int = 3,  # training months
                    drift_policy: DriftPolicy = DRIFT_POLICY,
                    promotion_policy: PromotionPolicy = POLICY,
                   ) -> dict:
    "Score and monitor `month` with the champion and act on the retrain signal; with no champion, train the first."
    started = time.perf_counter()
    row = {"month": month, "champion": alias_version(target), "scored": 0}
    if row["champion"] is not None:
        row["scored"] = score_month(spark, target, month)["predictions"]
    row["retrain"], row["reason"] = monitor_and_decide(spark, target, month, window, drift_policy)
    if row["retrain"]:
        why = row["reason"] if row["champion"] is None else f"retrain signal in {month}: {row['reason']}"
        row.update(challenge(spark, target, month, why, window, promotion_policy))
    row["seconds"] = time.perf_counter() - started
    return row

def run_lifecycle(spark: SparkSession, target: Target,
                  months: list[str],  # in order, e.g. `parse_months("2013-01..2013-12")`
                  window: int = 3,
                  progress=print,  # called with a line per month; None for silence
                 ) -> list[dict]:
    "The lifecycle over `months`, one after the other; returns a row per month."
    rows = []
    for month in months:
        rows.append(lifecycle_month(spark, target, month, window))
        if progress:
            progress(format_month(rows[-1]))
    return rows

def format_month(row: dict) -> str:
    "One line that says what happened in a month."
    done = f"{row['month']}: champion v{row['champion']}" if row["champion"] else f"{row['month']}: no champion"
    if row["scored"]:
        done += f", scored {row['scored']} flights"
    if "challenger" in row:
        done += (f"; trained v{row['challenger']} on {row['trained_on']} ({row['reason']}), "
                 f"{'promoted' if row['promoted'] else 'rejected: ' + row['decision']}")
    elif row["reason"]:
        done += f"; {row['reason']}"
    return done + f" [{row['seconds']:.0f} s]"


# %% [markdown]
# ## Example: a first quarter
#
# January has nothing before it; February trains the first champion; March is scored
# and monitored against it:

# %%
scratch = with_overrides(scratch_target(), schema="lifecycle")  # own tables and model: notebooks may share a home
spark = get_spark(scratch)
run_lakehouse(spark, scratch, parse_months("2013-01..2013-03"), progress=None)
quarter = run_lifecycle(spark, scratch, parse_months("2013-01..2013-03"), window=1)
test_eq([row["champion"] for row in quarter], [None, None, "1"])
test_eq((quarter[0]["reason"], quarter[1]["promoted"], quarter[2]["scored"]),
        ("no earlier month to learn from", True, 28_834))
test_eq(champion_history(scratch)["reason"].tolist()[0], "first model")

# %% [markdown]
# Running March again changes nothing it should not: same champion, same predictions
# and monitoring rows for the month (they are replaced, not added).

# %%
again = lifecycle_month(spark, scratch, "2013-03", window=1)
test_eq((again["champion"], again["scored"], again["retrain"]), ("1", 28_834, quarter[2]["retrain"]))
history = monitoring_history(spark, scratch)
test_eq(history.groupby(["month", "statistic", "subject"]).size().max(), 1)
display(monitoring_figure(history))

# %% [markdown]
# A retrain signal in a month with nothing before it (January again, scored by the
# champion of this run) is recorded, not acted on: `monitor_and_decide` says no. A policy that always fires shows it:

# %%
always = DriftPolicy(drifted_features=0)
january = lifecycle_month(spark, scratch, "2013-01", window=1, drift_policy=always)
test_eq((january["champion"], january["scored"], january["retrain"], "challenger" in january),
        ("1", 27_004, False, False))
assert january["reason"].endswith("no earlier month to retrain on")

# %% [markdown]
# ## As a job
#
# The bundle's `monthly` job is this lifecycle split into tasks (`score`, `monitor`, a
# `retrain_needed` condition, `train`, `promote`; see `nbs/pipelines/`), run locally by
# `dbxml run` (see [the runner](32_runner.ipynb)) and on Databricks by the bundle.
