# %% [markdown]
# # Monitor
# > After each scored month: has the input drifted from what the champion learnt on, have
# > its predictions moved, how good was it once the real delays are known, and is it
# > time to retrain?
#
# The baseline is the champion's own training data: the registry says which table,
# version and months (see `dbxml.registry`), so the baseline is exactly what the model
# saw, read `VERSION AS OF`. Each feature is cut into bins on that baseline (deciles for
# numbers, one bin per value for categories, plus a bin for missing and one for values
# never seen in training), and every month is counted into the same bins.
#
# Two statistics compare a month with the baseline: the population stability index
# (PSI, the credit-risk industry's drift measure, with its well-known reading: below 0.1
# stable, 0.1 to 0.25 a moderate shift, above 0.25 a major one) and the Jensen-Shannon
# distance (0 to 1, symmetric, from SciPy). Spark does the counting, so only a few
# hundred numbers leave the cluster whatever the data's size; ADR 0010 records why this
# beat the drift libraries we measured. Performance is measured with the same metrics
# as training, once the month's real delays are in the feature table. The results go to
# `monitor_flight_delay`, one row per month, feature and statistic, and a row that says
# whether to retrain and why: the job graph reads that row to decide.

# %%
#| default_exp monitor

# %%
#| export
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import reduce

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.spatial.distance import jensenshannon

from dbxml.config import DbxmlError, Target
from dbxml.registry import model_name, registry
from dbxml.score import predictions_spec, probability_column
from dbxml.tables import Column, TableSpec, replace_rows
from dbxml.train import evaluate, input_columns
from dbxml.usecase import UseCase, use_case_of

# %%
#| hide
from fastcore.test import test_close, test_eq, test_fail
from nbdev.showdoc import show_doc

from dbxml.catalog import table_name
from dbxml.config import load_target, scratch_target, with_overrides
from dbxml.flights import FLIGHTS
from dbxml.lakehouse import cached_lakehouse
from dbxml.sources import parse_months
from dbxml.registry import promote, register, validate
from dbxml.score import score_month
from dbxml.spark import get_spark
from dbxml.tables import content_digest
from dbxml.train import train_model

# %% [markdown]
# ## Bins and counts
#
# A `Bins` fixes how one column is cut. Bin `-1` holds missing values and, for
# categories, bin `-2` holds values the baseline never had (a new airport, say), so a
# month's counts always fit the baseline's bins. The predictions are monitored like one
# more feature.

# %%
#| export
MISSING, UNSEEN = -1, -2
PREDICTION = "delay_probability"  # the demo's prediction column (`UseCase.prediction`), monitored like a feature


# %% [markdown]
# A numeric column is cut at edges, a categorical one by its values. Either way the
# bins are plain labels, so a month is counted with one Spark expression per column.

# %%
#| export
@dataclass(frozen=True)
class Bins:
    "How one column is cut into bins."
    column: str
    edges: tuple[float, ...] = ()  # numbers: bin i holds values in (edges[i-1], edges[i]]
    categories: tuple[str, ...] = ()  # categories: bin i holds categories[i]

    @property
    def labels(self) -> list[int]:
        "Every bin a value can land in."
        size = len(self.categories) if self.categories else len(self.edges) + 1
        return [UNSEEN, MISSING, *range(size)] if self.categories else [MISSING, *range(size)]

    def index(self) -> SparkColumn:
        "A Spark column: the bin of each row's value."
        value = F.col(self.column)
        if self.categories:
            known = reduce(lambda chain, item: chain.when(value == item[1], item[0]),
                           enumerate(self.categories[1:], start=1), F.when(value == self.categories[0], 0))
            return F.when(value.isNull(), MISSING).otherwise(known.otherwise(UNSEEN))
        above = reduce(lambda total, edge: total + F.when(value > edge, 1).otherwise(0), self.edges, F.lit(0))
        return F.when(value.isNull() | F.isnan(value), MISSING).otherwise(above)


# %%
show_doc(Bins.labels)

# %%
show_doc(Bins.index)

# %% [markdown]
# Two edges make three numeric bins; two categories make two bins and the one for
# values never seen:

# %%
test_eq(Bins("temp", edges=(30.0, 50.0)).labels, [MISSING, 0, 1, 2])
test_eq(Bins("carrier", categories=("AA", "UA")).labels, [UNSEEN, MISSING, 0, 1])


# %% [markdown]
# The baseline decides the cuts: its distinct deciles for a number (a feature with few
# values gets fewer bins), every value it has for a string. One Spark job finds them all.

# %%
#| export
def _fit_bins(frame: DataFrame,  # the baseline rows
              columns: list[str],  # numeric or string columns of `frame`
              quantiles: int = 10,  # numeric bins: cut at these quantiles of the baseline
             ) -> list[Bins]:
    "Bins for `columns` fixed on `frame`: distinct deciles for numbers, the values seen for strings."
    kinds = dict(frame.dtypes)
    numeric = [column for column in columns if kinds[column] != "string"]
    cuts = [step / quantiles for step in range(1, quantiles)]
    row = frame.agg(*[F.percentile(column, cuts).alias(column) for column in numeric],
                    *[F.sort_array(F.collect_set(column)).alias(column) for column in columns
                      if column not in numeric]).first()
    return [Bins(column, edges=tuple(sorted(set(row[column] or [])))) if column in numeric
            else Bins(column, categories=tuple(row[column])) for column in columns]


# %% [markdown]
# Counting is one more Spark job, for every column at once; only the counts come back.

# %%
#| export
def _histograms(frame: DataFrame, bins: list[Bins]) -> dict[str, np.ndarray]:
    "The rows of `frame` in each bin of each column, in one Spark job: column -> counts in `Bins.labels` order."
    cells = F.explode(F.array(*[F.struct(F.lit(item.column).alias("column"), item.index().alias("bin"))
                                 for item in bins]))
    counts = frame.select(cells.alias("cell")).groupBy("cell.column", "cell.bin").count().collect()
    found = {(row["column"], row["bin"]): row["count"] for row in counts}
    return {item.column: np.array([found.get((item.column, label), 0) for label in item.labels], dtype=float)
            for item in bins}


# %% [markdown]
# ## Drift statistics
#
# PSI sums `(actual - expected) * ln(actual / expected)` over the bins' shares; an empty
# bin would make it infinite, so shares are floored at 0.0001 (the usual convention).

# %%
#| export
def population_stability(expected: np.ndarray,  # baseline counts per bin
                         actual: np.ndarray,  # current counts per bin, same bins
                         floor: float = 1e-4,  # the smallest share a bin is given
                        ) -> float:
    "The population stability index of `actual` against `expected`."
    expected = np.maximum(expected / expected.sum(), floor)
    actual = np.maximum(actual / actual.sum(), floor)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


# %% [markdown]
# The Jensen-Shannon distance needs no floor: an empty bin keeps it finite, and it
# stays between 0 and 1.

# %%
#| export
def js_distance(expected: np.ndarray, actual: np.ndarray) -> float:
    "The Jensen-Shannon distance between the two distributions, base 2 (0 = same, 1 = disjoint)."
    return float(jensenshannon(expected / expected.sum(), actual / actual.sum(), base=2))


# %% [markdown]
# The same distribution has no drift; a shift of half the mass across bins is a major
# one on either scale:

# %%
base = np.array([100.0, 200, 300, 400])
test_close(population_stability(base, base * 3), 0.0)
test_close(js_distance(base, base * 2), 0.0)
moved = np.array([300.0, 400, 200, 100])
assert population_stability(base, moved) > 0.25 and 0.2 < js_distance(base, moved) < 1
test_close(js_distance(np.array([1.0, 0]), np.array([0.0, 1])), 1.0)


# %% [markdown]
# ## When to retrain
#
# The retraining rule is code, like the promotion policy. Any one of three signals is
# enough: several features have shifted majorly at once (one feature alone, like the
# temperature from one month to the next, is what seasons do), the predictions
# themselves have shifted, or the model ranks late flights clearly worse than it did on
# its held-out month. These thresholds were written down before the year was run, not
# fitted to it.

# %%
#| export
@dataclass(frozen=True)
class DriftPolicy:
    "When monitoring raises the retrain signal."
    feature_psi: float = 0.25  # a feature with PSI at or above this has shifted majorly
    drifted_features: int = 3  # retrain when at least this many features shifted majorly
    prediction_psi: float = 0.2  # retrain when the predictions' PSI reaches this
    roc_auc_drop: float = 0.03  # retrain when ROC AUC falls this far below the held-out month's

    def reasons(self, drift: dict[str, float],  # column -> PSI, the features and the prediction
                roc_auc: float | None,  # this month's ROC AUC, None if no labels yet
                held_out_roc_auc: float,  # the model's ROC AUC on its held-out month
                prediction: str = PREDICTION,  # which column of `drift` is the prediction
               ) -> list[str]:
        "Why the model should be retrained; empty = it should not."
        reasons = []
        shifted = sorted(column for column, value in drift.items()
                         if column != prediction and value >= self.feature_psi)
        if len(shifted) >= self.drifted_features:
            reasons.append(f"{len(shifted)} features shifted (PSI >= {self.feature_psi}): {', '.join(shifted)}")
        if drift.get(prediction, 0.0) >= self.prediction_psi:
            reasons.append(f"predictions shifted: PSI {drift[prediction]:.3f} >= {self.prediction_psi}")
        if roc_auc is not None and roc_auc < held_out_roc_auc - self.roc_auc_drop:
            reasons.append(f"ROC AUC {roc_auc:.4f} fell more than {self.roc_auc_drop} below the held-out "
                           f"{held_out_roc_auc:.4f}")
        return reasons


# %%
show_doc(DriftPolicy.reasons)

# %% [markdown]
# The monitor stage judges every month by the defaults:

# %%
#| export
DRIFT_POLICY = DriftPolicy()

# %% [markdown]
# Two features shifting is what seasons do, a third raises the signal; drifted
# predictions and a fall in ROC AUC are one reason each; a month without labels yet is
# judged on drift alone:

# %%
quiet = {"temp": 0.6, "humid": 0.3, "wind_speed": 0.05, PREDICTION: 0.05}
test_eq(DRIFT_POLICY.reasons(quiet, 0.70, 0.71), [])
stormy = {**quiet, "visib": 0.4}
assert "3 features shifted" in DRIFT_POLICY.reasons(stormy, 0.70, 0.71)[0]
test_eq(len(DRIFT_POLICY.reasons({**quiet, PREDICTION: 0.3}, 0.60, 0.71)), 2)
test_eq(DRIFT_POLICY.reasons(quiet, None, 0.71), [])


# %% [markdown]
# The docs and the guides show the rule from the policy itself, so they cannot
# disagree with the code:

# %%
#| export
def drift_policy_markdown(policy: DriftPolicy = DRIFT_POLICY) -> str:
    "The retrain rule as a Markdown table, for the docs."
    rows = [("features", f"at least {policy.drifted_features} features with PSI ≥ {policy.feature_psi}"),
            ("predictions", f"PSI of the delay probability ≥ {policy.prediction_psi}"),
            ("performance", f"ROC AUC more than {policy.roc_auc_drop} below the model's held-out ROC AUC")]
    return "\n".join(["| signal | retrain when |", "|---|---|", *[f"| {name} | {rule} |" for name, rule in rows]])


# %%
test_eq(drift_policy_markdown(DriftPolicy(drifted_features=2)).splitlines()[2],
        "| features | at least 2 features with PSI ≥ 0.25 |")

# %%
#| exec_doc
from IPython.display import Markdown  # noqa: E402

Markdown(drift_policy_markdown())

# %% [markdown]
# ## The baseline
#
# A model version's baseline is computed once, from the rows its tags name, and kept in
# `monitor_baselines`: the bins and counts of every feature and of the model's own
# predictions on those rows (scored through Spark like any month).

# %%
#| export
BASELINES_SPEC = TableSpec(
    "monitor_baselines", "Per model version and column: the bins fixed on its training data and their counts.",
    (Column("model_name", "STRING", "The registered model.", nullable=False),
     Column("model_version", "STRING", "The model version.", nullable=False),
     Column("column_name", "STRING", "The feature, or delay_probability for the predictions.", nullable=False),
     Column("edges", "ARRAY<DOUBLE>", "Numeric bin edges; bin i holds (edges[i-1], edges[i]]."),
     Column("categories", "ARRAY<STRING>", "Categories; bin i holds categories[i]."),
     Column("counts", "ARRAY<DOUBLE>", "Training rows per bin, in the order unseen (categories only), missing, 0, 1, ..."),
     Column("training_data", "STRING", "The table, version and months the baseline was read from (JSON).")),
    keys=("model_name", "model_version", "column_name"))


# %% [markdown]
# What a version was trained on is in its registry tags (`dbxml.registry.register`
# writes them); a version registered some other way cannot be monitored.

# %%
#| export
def _training_data(target: Target, version: str) -> dict:
    "The table, version and months model `version` was trained on, from its registry tags."
    tags = registry(target).get_model_version(model_name(target), version).tags
    if "training_data" not in tags:
        raise DbxmlError(f"{model_name(target)} version {version} has no training_data tag: register it with "
                         "dbxml.registry.register.")
    return json.loads(tags["training_data"])["training"]


# %% [markdown]
# The first month a version is monitored pays for its baseline: the training rows read
# as they were, scored, cut and counted. Every later month reads the stored rows.

# %%
#| export
def baseline(spark: SparkSession, target: Target,
             version: str,  # the model version
            ) -> tuple[list[Bins], dict[str, np.ndarray]]:
    "The bins and baseline counts of model `version`, computed and stored on first use."
    table, model, use_case = BASELINES_SPEC.on(target), model_name(target), use_case_of(target)
    if table.exists(spark):
        stored = (table.read(spark).where((F.col("model_name") == model) & (F.col("model_version") == version))
                  .collect())
        if stored:
            bins = [Bins(row["column_name"], tuple(row["edges"] or ()), tuple(row["categories"] or ()))
                    for row in stored]
            return bins, {row["column_name"]: np.array(row["counts"]) for row in stored}
    data = _training_data(target, version)
    rows = (spark.sql(f"SELECT * FROM {data['table']} VERSION AS OF {data['version']}")
            .where(F.col("month").isin(data["months"]) & F.col(use_case.label).isNotNull())
            .select(*input_columns(use_case)))
    rows = rows.withColumn(use_case.prediction, probability_column(spark, f"models:/{model}/{version}", use_case))
    bins = _fit_bins(rows, [*use_case.model_features, use_case.prediction])
    counts = _histograms(rows, bins)
    stored = spark.createDataFrame(
        [(model, version, item.column, list(item.edges), list(item.categories), counts[item.column].tolist(),
          json.dumps(data, sort_keys=True)) for item in bins], BASELINES_SPEC.ddl())
    replace_rows(stored, table, {"model_name": model, "model_version": version},
                 {"stage": "monitor", "baseline_of": version})
    return bins, counts


# %% [markdown]
# ## Monitoring a month
#
# Every statistic of a month is one row of `monitor_<model>` (the demo's
# `monitor_flight_delay`), with the threshold it is judged against, so the table alone
# says what raised an alert.

# %%
#| export
MONITORING_COLUMNS = (
     Column("month", "STRING", "The month monitored, YYYY-MM.", nullable=False),
     Column("model_name", "STRING", "The registered model.", nullable=False),
     Column("model_version", "STRING", "The version that scored the month.", nullable=False),
     Column("kind", "STRING", "feature | prediction | performance | signal", nullable=False),
     Column("subject", "STRING", "The feature, the prediction, the metric's subject, or retrain.", nullable=False),
     Column("statistic", "STRING", "psi | js_distance | a metric name | retrain", nullable=False),
     Column("value", "DOUBLE", "The statistic's value (for the signal: 1 = retrain)."),
     Column("threshold", "DOUBLE", "The threshold it is judged against, if any."),
     Column("alert", "BOOLEAN", "The value crossed the threshold."),
     Column("detail", "STRING", "For the signal: the reasons; otherwise what the baseline was."),
     Column("monitored_at", "TIMESTAMP", "When the month was monitored."))

def monitoring_spec(use_case: UseCase) -> TableSpec:
    "The monitoring table of `use_case`'s model: `monitor_<model>`."
    return TableSpec(f"monitor_{use_case.model}", f"Monthly drift and performance of the {use_case.model} model, "
                     "and the retrain signal.", MONITORING_COLUMNS, keys=("month", "kind", "subject", "statistic"))


# %% [markdown]
# What a month's monitoring found is also returned, for the task that decides next:

# %%
#| export
@dataclass
class Monitoring:
    "What monitoring found for one month."
    month: str
    model_version: str
    drift: dict[str, float]  # column -> PSI
    distance: dict[str, float]  # column -> Jensen-Shannon distance
    performance: dict | None  # the month's metrics once labels are known
    reasons: list[str]  # why to retrain; empty = no need
    prediction: str = PREDICTION  # which column of `drift` is the prediction

    @property
    def retrain(self) -> bool:
        "Whether the month raised the retrain signal."
        return bool(self.reasons)

    @property
    def reason(self) -> str:
        "Why to retrain, or that no signal crossed its threshold."
        return "; ".join(self.reasons) or "no signal crossed its threshold"


# %%
show_doc(Monitoring.retrain)

# %%
show_doc(Monitoring.reason)

# %%
calm = Monitoring("2013-03", "1", {"temp": 0.05}, {"temp": 0.02}, None, [])
test_eq((calm.retrain, calm.reason), (False, "no signal crossed its threshold"))
test_eq(Monitoring("2013-03", "1", {}, {}, None, ["a", "b"]).reason, "a; b")


# %% [markdown]
# A month is compared with the baseline of the model that scored it, so its predictions
# must all come from one version.

# %%
#| export
def _scored_month(spark: SparkSession, target: Target, month: str) -> tuple[DataFrame, str]:
    "The month's predictions joined with its features and labels, and the model version that scored them."
    use_case = use_case_of(target)
    scored = predictions_spec(use_case).on(target)
    if not scored.exists(spark):
        raise DbxmlError(f"{scored.name} does not exist: score a month first (dbxml.score).")
    predictions = scored.read(spark).where(F.col("month") == month)
    versions = [row["model_version"] for row in predictions.select("model_version").distinct().collect()]
    if len(versions) != 1:
        raise DbxmlError(f"{month} has predictions from {len(versions)} model versions {versions}: score it "
                         "(again) with one model first.")
    features = use_case.features.on(target).read(spark).where(F.col("month") == month)
    joined = predictions.select(use_case.key, use_case.prediction).join(
        features.select(use_case.key, *input_columns(use_case), use_case.label), use_case.key)
    return joined, versions[0]


# %% [markdown]
# `monitor_month` puts it together: count the month into the baseline's bins, compare,
# measure performance once the month's labels hold late and on-time flights, apply the
# policy, record.

# %%
#| export
def monitor_month(spark: SparkSession, target: Target,
                  month: str,  # a scored month, `YYYY-MM`
                  policy: DriftPolicy = DRIFT_POLICY,
                 ) -> Monitoring:
    "Measure the month's drift and performance against its model's baseline, record them, and decide on retraining."
    rows, version = _scored_month(spark, target, month)
    label, prediction = use_case_of(target).label, use_case_of(target).prediction
    bins, expected = baseline(spark, target, version)
    actual = _histograms(rows, bins)
    drift = {item.column: population_stability(expected[item.column], actual[item.column]) for item in bins}
    distance = {item.column: js_distance(expected[item.column], actual[item.column]) for item in bins}
    labelled = rows.where(F.col(label).isNotNull()).select(label, prediction).toPandas()
    performance = evaluate(labelled[label], labelled[prediction]) if labelled[label].nunique() == 2 else None
    held_out = float(registry(target).get_model_version(model_name(target), version).tags["validation_roc_auc"])
    reasons = policy.reasons(drift, performance and performance["roc_auc"], held_out, prediction)
    result = Monitoring(month, version, drift, distance, performance, reasons, prediction)
    _write_monitoring(spark, target, result, policy, held_out)
    return result


# %% [markdown]
# Each statistic becomes a row with its threshold and whether it crossed it; the
# Jensen-Shannon distance is recorded for reading, the policy judges by PSI.

# %%
#| export
def _monitoring_rows(result: Monitoring, policy: DriftPolicy, held_out_roc_auc: float) -> list[tuple]:
    "The rows `monitor_month` records: (kind, subject, statistic, value, threshold, alert, detail)."
    rows = []
    for column, value in result.drift.items():
        kind, threshold = (("prediction", policy.prediction_psi) if column == result.prediction
                           else ("feature", policy.feature_psi))
        rows.append((kind, column, "psi", value, threshold, value >= threshold, None))
        rows.append((kind, column, "js_distance", result.distance[column], None, None, None))
    for metric, value in (result.performance or {}).items():
        threshold = held_out_roc_auc - policy.roc_auc_drop if metric == "roc_auc" else None
        rows.append(("performance", "model", metric, value, threshold,
                     None if threshold is None else value < threshold, None))
    rows.append(("signal", "retrain", "retrain", float(result.retrain), None, result.retrain,
                 result.reason))
    return rows


# %%
worse = Monitoring("2013-03", "1", {"temp": 0.3, PREDICTION: 0.05}, {"temp": 0.2, PREDICTION: 0.1},
                   {"roc_auc": 0.6, "log_loss": 0.5}, ["ROC AUC fell"])
test_eq(_monitoring_rows(worse, DRIFT_POLICY, 0.75),
        [("feature", "temp", "psi", 0.3, 0.25, True, None),
         ("feature", "temp", "js_distance", 0.2, None, None, None),
         ("prediction", PREDICTION, "psi", 0.05, 0.2, False, None),
         ("prediction", PREDICTION, "js_distance", 0.1, None, None, None),
         ("performance", "model", "roc_auc", 0.6, 0.75 - DRIFT_POLICY.roc_auc_drop, True, None),
         ("performance", "model", "log_loss", 0.5, None, None, None),
         ("signal", "retrain", "retrain", 1.0, None, True, "ROC AUC fell")])


# %% [markdown]
# Writing replaces the month's rows, so monitoring a month again leaves one set of
# rows, and the commit's note keeps the policy it was judged by.

# %%
#| export
def _write_monitoring(spark: SparkSession, target: Target, result: Monitoring, policy: DriftPolicy,
                      held_out_roc_auc: float) -> int:
    "Replace the month's rows of the monitoring table (the demo's `monitor_flight_delay`) with `result`."
    model, spec = model_name(target), monitoring_spec(use_case_of(target))
    rows = [(result.month, model, result.model_version, *row) for row in
            _monitoring_rows(result, policy, held_out_roc_auc)]
    frame = (spark.createDataFrame(rows, spec.ddl(without=("monitored_at",)))
             .withColumn("monitored_at", F.current_timestamp()))
    return replace_rows(frame, spec.on(target), {"month": result.month},
                        {"stage": "monitor", "month": result.month, "model_version": result.model_version,
                         "policy": asdict(policy)})


# %% [markdown]
# The job graph asks the table, not the process that monitored, whether to retrain: the
# answer survives between tasks and is there for an auditor afterwards.

# %%
#| export
def retrain_signal(spark: SparkSession, target: Target, month: str) -> tuple[bool, str]:
    "Whether monitoring `month` raised the retrain signal, and why."
    table = monitoring_spec(use_case_of(target)).on(target)
    row = (table.read(spark).where((F.col("month") == month) & (F.col("kind") == "signal")).first()
           if table.exists(spark) else None)
    if row is None:
        raise DbxmlError(f"{month} has not been monitored: run the monitor stage for it first.")
    return bool(row["alert"]), row["detail"]


# %% [markdown]
# For a look across months, the whole table comes back as one small pandas frame:

# %%
#| export
def monitoring_history(spark: SparkSession, target: Target) -> pd.DataFrame:
    "Every month's monitoring rows, as a pandas frame ordered by month."
    return monitoring_spec(use_case_of(target)).on(target).read(spark).orderBy("month", "kind", "subject", "statistic").toPandas()


# %% [markdown]
# ## Plotting the year
#
# One figure with three panels, month by month: the PSI of every feature (the ones that
# ever crossed the threshold by name), the PSI of the predictions, and the ROC AUC with
# the months that raised the retrain signal marked.

# %%
#| export
def monitoring_figure(history: pd.DataFrame,  # `monitoring_history`
                      policy: DriftPolicy = DRIFT_POLICY,
                     ) -> Figure:
    "Feature drift, prediction drift and performance by month, retrain signals marked."
    psi = history[history.statistic == "psi"].pivot(index="month", columns="subject", values="value")
    predictions = set(history[history.kind == "prediction"].subject)
    auc = history[history.statistic == "roc_auc"].set_index("month")["value"]
    signals = history[(history.kind == "signal") & history.alert.astype(bool)].month.tolist()
    figure = Figure(figsize=(9, 8))
    features_axes, prediction_axes, auc_axes = figure.subplots(3, 1, sharex=True)
    for column in [column for column in psi.columns if column not in predictions]:
        shifted = (psi[column] >= policy.feature_psi).any()
        features_axes.plot(psi.index, psi[column], marker="o" if shifted else None, alpha=1 if shifted else 0.3,
                           label=column if shifted else None)
    features_axes.axhline(policy.feature_psi, color="grey", linestyle="--")
    features_axes.set_yscale("symlog", linthresh=0.1)
    features_axes.set(ylabel="feature PSI (symmetric log)", title="Drift against the champion's training data")
    features_axes.legend(fontsize="small", ncol=3)
    for column in sorted(predictions & set(psi.columns)):
        prediction_axes.plot(psi.index, psi[column], marker="o")
    prediction_axes.axhline(policy.prediction_psi, color="grey", linestyle="--")
    prediction_axes.set(ylabel="prediction PSI")
    auc_axes.plot(auc.index, auc.to_numpy(), marker="o")
    auc_axes.set(ylabel="ROC AUC", xlabel="month")
    for axes in (features_axes, prediction_axes, auc_axes):
        for month in signals:
            axes.axvline(month, color="red", alpha=0.3)
    figure.tight_layout()
    return figure


# %% [markdown]
# ## Example: the champion trained on January, watched in March
#
# The real January to March; a model trained on January and validated on February is
# champion, scores March, and March is monitored:

# %%
scratch = with_overrides(scratch_target(), schema="monitor")  # own tables and model: notebooks may share a home
spark = get_spark(scratch)
cached_lakehouse(spark, scratch, parse_months("2013-01..2013-03"))  # built once, copied after (15_lakehouse)
version = register(scratch, train_model(spark, scratch, "2013-02", window=1))
assert promote(scratch, validate(spark, scratch, version, "2013-02"), why="first model")
test_fail(lambda: monitor_month(spark, scratch, "2013-03"), contains="score a month first")
score_month(spark, scratch, "2013-03")
march = monitor_month(spark, scratch, "2013-03")
print({column: round(value, 3) for column, value in march.drift.items()}, march.reasons)

# %% [markdown]
# The baseline holds every column; its counts add up to the training rows, and March's
# temperatures have moved away from January's while the carriers have not:

# %%
bins, counts = baseline(spark, scratch, version)
test_eq(sorted(item.column for item in bins), sorted([*FLIGHTS.model_features, FLIGHTS.prediction]))
client = registry(scratch)
training_run = client.get_run(client.get_model_version(model_name(scratch), version).run_id)
test_eq({counts[item.column].sum() for item in bins}, {float(training_run.data.params["training_rows"])})
assert march.drift["temp"] > 0.1 > march.drift["carrier"]
assert 0.6 < march.performance["roc_auc"] < 0.8

# %% [markdown]
# Monitoring the month again replaces its rows, and the signal can be read back:

# %%
monitor_name = table_name(scratch, "monitor_flight_delay").on(scratch)
before = content_digest(spark, monitor_name, exclude=("monitored_at",))
monitor_month(spark, scratch, "2013-03")
test_eq(content_digest(spark, monitor_name, exclude=("monitored_at",)), before)
test_eq(retrain_signal(spark, scratch, "2013-03")[0], march.retrain)
test_fail(lambda: retrain_signal(spark, scratch, "2013-04"), contains="has not been monitored")

# %%
display(monitoring_figure(monitoring_history(spark, scratch)))

# %% [markdown]
# ## As a job task
#
# This stage runs as the `monitor` task of the bundle's `monthly` job, through the
# pipeline notebook [`pipelines/monitor.ipynb`](pipelines/monitor.ipynb), which declares its
# parameters; `dbxml run` runs that job locally (see [the runner](32_runner.ipynb)).

# %% [markdown]
# ## The year
#
# The same figure for the real year, as the main job (`make run`) monitored it on the
# local target: each month scored by the champion of its time, drift measured against
# that champion's training data (this cell is one of the notebook's results, see
# [results](07_results.ipynb)):

# %%
#| results
#| year
year = load_target("local")
monitoring_figure(monitoring_history(get_spark(year), year))
