# %% [markdown]
# # Train
# > A gradient-boosted delay model, trained on a trailing window of months, validated
# > on the month after it, and tracked in MLflow with the exact data it saw.
#
# The model answers one question for each scheduled flight: will it leave 15 or more
# minutes late? It reads `gold_flight_features`, which holds only what is known before
# departure. Training is time-based: the model learns from the `window` months before
# a held-out month and is judged on that month, the way it will be used (trained on
# the past, scoring the future).
#
# The trainer is scikit-learn's `HistGradientBoostingClassifier` on the driver, fed from
# Spark; ADR 0009 records why (measured against Spark ML and XGBoost on Spark) and how
# it scales out on a cluster. Everything the run produces goes to MLflow: parameters,
# metrics, figures, the model with its signature and pinned environment, and the Delta
# table and version of the training and validation rows (`mlflow.data`).

# %%
#| default_exp train

# %%
#| export
from __future__ import annotations

import subprocess
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version as installed_version
from importlib.resources import files

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.models import infer_signature
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score, roc_curve
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from dbxml.config import DbxmlError, Target
from dbxml.sources import check_month
from dbxml.tables import table_version
from dbxml.tracking import ensure_experiment
from dbxml.usecase import UseCase, use_case_of

# %%
#| hide
from pathlib import Path

import skops.io
from fastcore.test import test_close, test_eq, test_fail
from nbdev.showdoc import show_doc

from dbxml.config import scratch_target, with_overrides
from dbxml.flights import FLIGHTS
from dbxml.gold import FEATURES
from dbxml.lakehouse import cached_lakehouse
from dbxml.sources import parse_months
from dbxml.spark import get_spark

# %% [markdown]
# ## What the model reads
#
# The use case names the feature columns the model reads ([the use case](17_usecase.ipynb));
# the STRING ones are categories. The demo's are every feature of the gold table but
# `day_of_year`: a model trained on three months has never seen the days of the month it
# scores, so that feature could only mislead it.

# %%
test_eq(FLIGHTS.categorical, ["carrier", "origin", "dest"])
assert "day_of_year" not in FLIGHTS.model_features and len(FLIGHTS.model_features) == len(FEATURES) - 1


# %% [markdown]
# Categories stay strings; every number becomes a double, because MLflow's signature
# check refuses an integer column where it recorded a float, and the plane's age and
# seats are missing for some flights (a missing integer can only be a float in pandas).
# Training, scoring and monitoring all select these columns, so they agree on the types.

# %%
#| export
def input_columns(use_case: UseCase) -> list:
    "The model's input columns, in order, typed as the model's signature expects."
    categorical = use_case.categorical
    return [F.col(name).cast("string" if name in categorical else "double").alias(name)
            for name in use_case.model_features]

def model_input(frame: DataFrame,  # rows with at least the model's features
                use_case: UseCase,
               ) -> DataFrame:
    "Just the model's input columns of `frame`."
    return frame.select(*input_columns(use_case))


# %% [markdown]
# ## Time-based windows
#
# The training months are the `window` months just before the held-out month. When the
# table holds fewer (at the start of the data), training uses those it has.

# %%
#| export
def training_months(month: str,  # the held-out month, `YYYY-MM`
                    window: int = 3,  # how many months before it to learn from
                   ) -> list[str]:
    "The `window` months before `month`, oldest first; a `DbxmlError` unless `window` is at least 1."
    if not isinstance(window, int) or window < 1:
        raise DbxmlError(f"window must be a whole number of months, at least 1, not {window!r}.")
    start = pd.Period(check_month(month), freq="M")
    return [str(start - back) for back in range(window, 0, -1)]


# %%
test_eq(training_months("2013-04"), ["2013-01", "2013-02", "2013-03"])
test_eq(training_months("2013-02", window=1), ["2013-01"])
test_eq(training_months("2014-01", window=2), ["2013-11", "2013-12"])
test_fail(lambda: training_months("2013-04", window=0), contains="window must be a whole number of months")


# %% [markdown]
# ## Reading labelled rows at a pinned version
#
# Training and validation rows are read at one Delta version of the feature table, and
# that version is what MLflow records: reading `VERSION AS OF` it later gives the same
# rows, whatever was written since. Cancelled flights have no label and are left out.
#
# Months with no labelled rows at all raise their own error, so the monthly job can tell
# "nothing to learn from yet" apart from a real failure (see [the tasks](24_tasks.ipynb)).

# %%
#| export
class NoLabelledRows(DbxmlError):
    "The feature table has no labelled rows for the months asked."


# %% [markdown]
# The rows stay a Spark frame until the trainer needs them on the driver; they carry the
# table and version they were read at, which is what MLflow and the registry record.

# %%
#| export
@dataclass
class LabelledRows:
    "Labelled rows of the feature table for some months, as of one table version."
    table: str  # the table's full name, as Spark knows it
    version: int  # the Delta version read
    months: list[str]
    frame: DataFrame  # the key, month, the model's input columns and the label
    use_case: UseCase  # what the columns are

    def to_pandas(self) -> tuple[pd.DataFrame, pd.Series]:
        "The model input and the labels as pandas objects, in key order."
        rows = self.frame.orderBy(self.use_case.key).toPandas()
        return rows[list(self.use_case.model_features)], rows[self.use_case.label].astype("int64")


# %%
show_doc(LabelledRows.to_pandas)


# %% [markdown]
# Without a version, `labelled_rows` reads the latest one; the validation rows are then
# read at the training rows' version, so both sides of a run see the same table.

# %%
#| export
def labelled_rows(spark: SparkSession, target: Target,
                  months: list[str],  # the months to read
                  version: int | None = None,  # the table version (default: the latest)
                 ) -> LabelledRows:
    "The labelled rows of the use case's feature table (the demo's `gold_flight_features`) for `months`."
    use_case = use_case_of(target)
    name = use_case.features.on(target).name
    latest = table_version(spark, name)
    if latest is None:
        raise DbxmlError(f"{name} does not exist: build gold first (dbxml run -p month=YYYY-MM).")
    version = latest if version is None else version
    rows = spark.sql(f"SELECT * FROM {name} VERSION AS OF {version}").where(F.col("month").isin(months))
    rows = rows.where(F.col(use_case.label).isNotNull())
    present = sorted(row["month"] for row in rows.select("month").distinct().collect())
    if not present:
        raise NoLabelledRows(f"{name} (version {version}) has no labelled rows for {', '.join(months)}: "
                         "build those months first (dbxml run -p month=YYYY-MM).")
    frame = rows.select(use_case.key, "month", *input_columns(use_case), use_case.label)
    return LabelledRows(name, version, present, frame, use_case)


# %% [markdown]
# ## The model
#
# A scikit-learn pipeline: the use case's categories (the demo's three) are encoded as
# integers (an airport or carrier never seen in training becomes missing), then
# gradient-boosted trees that
# treat those columns as categories and handle missing values natively. The pipeline is
# one object, so what is logged is what scores.
#
# The trees' settings are one dictionary, so a run logs them as parameters and a
# retrain can override a few by name:

# %%
#| export
DEFAULT_PARAMS = {  # HistGradientBoostingClassifier's settings for the delay model
    "learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 31, "min_samples_leaf": 50, "l2_regularization": 1.0}


# %%
#| export
def build_model(categorical: list[str],  # the input columns that are categories (`UseCase.categorical`)
                params: dict | None = None,  # overrides of `DEFAULT_PARAMS`
                seed: int = 0,  # fixes the early-stopping split, so a retrain is reproducible
               ) -> Pipeline:
    "An untrained classifier: categories encoded first, then gradient-boosted trees."
    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                       encoded_missing_value=np.nan), list(categorical))],
        remainder="passthrough", verbose_feature_names_out=False)
    classify = HistGradientBoostingClassifier(
        **{**DEFAULT_PARAMS, **(params or {})}, categorical_features=list(range(len(categorical))) or None,
        random_state=seed)
    return Pipeline([("encode", encode), ("classify", classify)])


# %% [markdown]
# An override replaces one setting and keeps the others:

# %%
untrained = build_model(FLIGHTS.categorical, {"max_iter": 50}, seed=1).named_steps["classify"]
test_eq((untrained.max_iter, untrained.learning_rate, untrained.random_state), (50, 0.1, 1))
test_eq(untrained.categorical_features, [0, 1, 2])


# %% [markdown]
# ## Metrics and figures
#
# Four numbers judge a model on held-out rows: ROC AUC (does it rank late flights above
# punctual ones), PR AUC (the same, for the rarer class), log loss (are its
# probabilities honest), and the expected calibration error: the gap between predicted
# and observed delay rates, averaged over ten probability bins weighted by their rows.

# %%
#| export
def calibration_error(labels: np.ndarray,  # 0/1 outcomes
                      probabilities: np.ndarray,  # predicted probabilities of 1
                      bins: int = 10,  # equal-width probability bins
                     ) -> float:
    "Expected calibration error: the row-weighted mean |observed rate - mean prediction| over the bins."
    labels, probabilities = np.asarray(labels, dtype=float), np.asarray(probabilities, dtype=float)
    which = np.minimum((probabilities * bins).astype(int), bins - 1)
    error = 0.0
    for index in np.unique(which):
        inside = which == index
        error += inside.mean() * abs(labels[inside].mean() - probabilities[inside].mean())
    return float(error)


# %% [markdown]
# A late flight predicted at 0.2 is 0.8 off in its bin, a punctual one predicted at 0 is
# exact in its own, and each bin holds half the rows:

# %%
test_close(calibration_error(np.array([0, 1]), np.array([0.0, 0.2])), 0.4)


# %% [markdown]
# `evaluate` returns them with the Brier score and the row count, the observed delay
# rate and the mean prediction, which put the other numbers in context. A month with
# one class only cannot be ranked, so it is refused rather than scored.

# %%
#| export
def evaluate(labels: np.ndarray,  # 0/1 outcomes
             probabilities: np.ndarray,  # predicted probabilities of 1
            ) -> dict:
    "The model's metrics on held-out rows."
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    if len(np.unique(labels)) < 2:
        raise DbxmlError(f"cannot evaluate on {len(labels)} rows holding one class only: a held-out month needs "
                         "both delayed and punctual flights.")
    return {"roc_auc": roc_auc_score(labels, probabilities),
            "pr_auc": average_precision_score(labels, probabilities),
            "log_loss": log_loss(labels, probabilities, labels=[0, 1]),
            "brier": brier_score_loss(labels, probabilities),
            "calibration_error": calibration_error(labels, probabilities),
            "rows": float(len(labels)), "positive_rate": float(labels.mean()),
            "mean_prediction": float(probabilities.mean())}


# %% [markdown]
# A perfectly calibrated constant guess has no calibration error and an AUC of one
# half; a model sure of the wrong answer has the worst log loss:

# %%
outcomes = np.array([0, 0, 0, 1] * 25)
guess = evaluate(outcomes, np.full(100, 0.25))
test_eq((guess["roc_auc"], guess["positive_rate"]), (0.5, 0.25))
test_close(guess["calibration_error"], 0.0)
assert evaluate(outcomes, 1 - outcomes * 0.98 - 0.01)["log_loss"] > 4 > guess["log_loss"]
test_fail(lambda: evaluate(np.zeros(10), np.full(10, 0.1)), contains="one class only")


# %% [markdown]
# The figures use matplotlib's object API (no global pyplot state), so a long run does
# not accumulate open figures; a notebook shows them as they are returned.

# %%
#| export
def _roc_figure(labels: np.ndarray, probabilities: np.ndarray) -> Figure:
    "The ROC curve, with its area, against the diagonal of a guess."
    false_positive, true_positive, _ = roc_curve(labels, probabilities)
    figure = Figure(figsize=(4.5, 4))
    axes = figure.subplots()
    axes.plot(false_positive, true_positive, label=f"model (AUC {roc_auc_score(labels, probabilities):.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="guess")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, held-out month")
    axes.legend(loc="lower right")
    return figure


# %% [markdown]
# The constant guess above lies on the diagonal, and its legend says so:

# %%
test_eq([line.get_label() for line in _roc_figure(outcomes, np.full(100, 0.25)).axes[0].lines],
        ["model (AUC 0.500)", "guess"])


# %% [markdown]
# The calibration figure shows where in the probability range the calibration error
# comes from:

# %%
#| export
def _calibration_figure(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> Figure:
    "Observed delay rate against mean predicted probability, per probability bin."
    observed, predicted = calibration_curve(labels, probabilities, n_bins=bins)
    figure = Figure(figsize=(4.5, 4))
    axes = figure.subplots()
    axes.plot(predicted, observed, marker="o", label="model")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.set(xlabel="mean predicted probability", ylabel="observed delay rate", title="Calibration, held-out month")
    axes.legend(loc="upper left")
    return figure


# %% [markdown]
# The calibrated guess is one point, on the diagonal:

# %%
test_eq(_calibration_figure(outcomes, np.full(100, 0.25)).axes[0].lines[0].get_xydata().tolist(), [[0.25, 0.25]])


# %% [markdown]
# The importance figure ranks the features by how much ROC AUC drops on the held-out
# month when one of them is shuffled:

# %%
#| export
def _importance_figure(importances: pd.Series,  # feature -> drop in ROC AUC when shuffled
                      ) -> Figure:
    "Permutation importances as horizontal bars, the largest on top."
    ordered = importances.sort_values()
    figure = Figure(figsize=(5, 4.5))
    axes = figure.subplots()
    axes.barh(ordered.index, ordered.to_numpy())
    axes.set(xlabel="drop in ROC AUC when the feature is shuffled", title="Feature importance, held-out month")
    figure.tight_layout()
    return figure


# %%
bars = _importance_figure(pd.Series({"carrier": 0.05, "distance": 0.01, "hour": 0.02})).axes[0].patches
test_eq([bar.get_width() for bar in bars], [0.01, 0.02, 0.05])  # drawn bottom up: the largest on top


# %% [markdown]
# Shuffling (permutation importance) needs only the fitted pipeline, so it speaks in the
# model's input columns rather than in encoded ones; a sample of the rows keeps it short.

# %%
#| export
def _feature_importances(model: Pipeline, features: pd.DataFrame, labels: pd.Series,
                         rows: int = 5000,  # a sample of the held-out rows keeps this to seconds
                         seed: int = 0,
                        ) -> pd.Series:
    "How much ROC AUC drops when each feature is shuffled (permutation importance)."
    sample = features.sample(min(rows, len(features)), random_state=seed)
    result = permutation_importance(model, sample, labels.loc[sample.index], scoring="roc_auc", n_repeats=3,
                                    random_state=seed)
    return pd.Series(result.importances_mean, index=features.columns)


# %% [markdown]
# ## Logging the model
#
# The model is saved with skops rather than pickle: loading a skops file runs no code
# from the file, only types that are explicitly trusted. The list below is the whole
# trust we extend beyond scikit-learn's defaults, and a test checks that a trained
# model needs no more. `pyfunc_predict_fn` makes the generic MLflow model answer with
# probabilities, which is what scoring and monitoring need. The environment is pinned
# to the versions that trained the model.

# %%
#| export
TRUSTED_TYPES = [  # types in a saved delay model that skops does not trust by default
    "functools.partial", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array"]
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")

def experiment_path(target: Target) -> str:
    "The MLflow experiment of the target's model: `/Shared/dbxml/<model>` (the demo's `flight_delay`)."
    return f"/Shared/dbxml/{use_case_of(target).model}"


# %%
#| export
def _pinned_requirements() -> list[str]:
    "The scoring environment: the installed versions of what the model needs."
    return [f"{package}=={installed_version(package)}" for package in MODEL_REQUIREMENTS]


# %%
assert all(line.startswith(("mlflow==3.17", "scikit-learn==")) or "==" in line for line in _pinned_requirements())
test_eq([line.split("==")[0] for line in _pinned_requirements()], list(MODEL_REQUIREMENTS))


# %% [markdown]
# Each run is tagged with the commit of the code that trained it, so a model version
# leads back to its source.

# %%
#| export
def source_commit() -> str:
    "The git commit of the code that is running, or `unknown` outside a git checkout."
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=files("dbxml"), capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


# %%
assert len(source_commit()) in (40, len("unknown"))


# %% [markdown]
# ## Training
#
# `train_model` does the whole stage: read the rows at one version, fit, evaluate on the
# held-out month, and log. It hands back what the registry needs to tag a model version
# with its lineage: the run, the logged model, its metrics and the rows on both sides.

# %%
#| export
@dataclass
class TrainedModel:
    "What a training run produced."
    run_id: str
    model_uri: str  # `models:/<model id>`, the logged model
    metrics: dict  # on the held-out month
    training: LabelledRows
    validation: LabelledRows
    figures: dict[str, Figure] = field(default_factory=dict)


# %% [markdown]
# Both sets of rows are inputs of the run, named after their table and months, so the
# run links the model to the Delta version it learnt from and was judged on.

# %%
#| export
def _log_rows(rows: LabelledRows, context: str) -> None:
    "Record `rows` as an input of the active run: the Delta table, its version and the months."
    name = f"{rows.table.split('.')[-1]} {rows.months[0]}..{rows.months[-1]}"
    with warnings.catch_warnings():
        # MLflow hints that an integer column cannot hold a missing value: the label is an integer by
        # design and these rows all have one, so the hint would only add noise to every run's log
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
        dataset = mlflow.data.from_spark(rows.frame, table_name=rows.table, version=rows.version, name=name,
                                         targets=rows.use_case.label)
        mlflow.log_input(dataset, context=context)


# %% [markdown]
# `shuffle_labels` trains on labels shuffled across rows, which destroys every real
# signal: it exists to prove that validation stops a bad model.

# %%
#| export
def train_model(spark: SparkSession, target: Target,
                month: str,  # the held-out month; training reads the months before it
                window: int = 3,  # training months
                params: dict | None = None,  # overrides of `DEFAULT_PARAMS`
                shuffle_labels: bool = False,  # train on shuffled labels (a deliberately useless model)
                seed: int = 0,
               ) -> TrainedModel:
    "Train the use case's model on the `window` months before `month`, evaluate it on `month`, log it to MLflow."
    training = labelled_rows(spark, target, training_months(month, window))
    validation = labelled_rows(spark, target, [month], version=training.version)
    features, labels = training.to_pandas()
    held_out, outcomes = validation.to_pandas()
    if shuffle_labels:
        labels = labels.sample(frac=1.0, random_state=seed).set_axis(labels.index)
    settings = {**DEFAULT_PARAMS, **(params or {})}
    model = build_model(training.use_case.categorical, settings, seed).fit(features, labels)
    probabilities = model.predict_proba(held_out)[:, 1]
    metrics = evaluate(outcomes.to_numpy(), probabilities)
    figures = {"roc": _roc_figure(outcomes, probabilities), "calibration": _calibration_figure(outcomes, probabilities),
               "importance": _importance_figure(_feature_importances(model, held_out, outcomes, seed=seed))}
    experiment_id = ensure_experiment(target, experiment_path(target))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train {month}") as run:
        mlflow.log_params({**settings, "window": window, "held_out_month": month, "seed": seed,
                           "training_months": ",".join(training.months), "shuffle_labels": shuffle_labels,
                           "features": ",".join(training.use_case.model_features), "training_rows": len(features)})
        mlflow.log_metrics(metrics)
        mlflow.set_tags({"dbxml.git_commit": source_commit(), "dbxml.stage": "train"})
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"figures/{name}.png")
        _log_rows(training, "training")
        _log_rows(validation, "validation")
        logged = mlflow.sklearn.log_model(
            model, name="model", serialization_format="skops", skops_trusted_types=TRUSTED_TYPES,
            signature=infer_signature(held_out.head(100), probabilities[:100]), input_example=held_out.head(5),
            pyfunc_predict_fn="predict_proba", pip_requirements=_pinned_requirements())
    return TrainedModel(run.info.run_id, logged.model_uri, metrics, training, validation, figures)


# %% [markdown]
# ## Example: January teaches, February judges
#
# The real first quarter as a scratch lakehouse (built once for all the examples, then
# copied: `cached_lakehouse`), then one training run:

# %%
scratch = with_overrides(scratch_target(), schema="train")  # own tables and model: notebooks may share a home
spark = get_spark(scratch)
cached_lakehouse(spark, scratch, parse_months("2013-01..2013-03"))  # built once, copied after (15_lakehouse)
trained = train_model(spark, scratch, "2013-02", window=1)
print({name: round(value, 4) for name, value in trained.metrics.items()})
test_eq((trained.training.months, trained.validation.months), (["2013-01"], ["2013-02"]))
assert trained.metrics["roc_auc"] > 0.6 and trained.metrics["rows"] > 20_000
test_fail(lambda: labelled_rows(spark, scratch, ["2012-06"]), contains="build those months first")

# %% [markdown]
# The run holds the figures, the model with its signature, and both datasets with the
# table and version they came from:

# %%
client = mlflow.MlflowClient()
run = client.get_run(trained.run_id)
test_eq(sorted(item.path for item in client.list_artifacts(trained.run_id, "figures")),
        ["figures/calibration.png", "figures/importance.png", "figures/roc.png"])
sources = {item.tags[0].value: item.dataset for item in run.inputs.dataset_inputs}
test_eq(sorted(sources), ["training", "validation"])
assert f'"delta_table_version": {trained.training.version}' in sources["training"].source
logged = mlflow.models.get_model_info(trained.model_uri)
test_eq(logged.signature.inputs.input_names(), list(FLIGHTS.model_features))
test_eq(run.data.params["training_months"], "2013-01")

# %% [markdown]
# The saved model needs no trust beyond `TRUSTED_TYPES`:

# %%
local_model = Path(mlflow.artifacts.download_artifacts(trained.model_uri)) / "model.skops"
assert set(skops.io.get_untrusted_types(file=local_model)) <= set(TRUSTED_TYPES)

# %% [markdown]
# The same model trained on shuffled labels has learnt nothing:

# %%
useless = train_model(spark, scratch, "2013-02", window=1, shuffle_labels=True)
print(round(useless.metrics["roc_auc"], 4))
assert abs(useless.metrics["roc_auc"] - 0.5) < 0.05 < trained.metrics["roc_auc"] - useless.metrics["roc_auc"]

# %%
#| results
for figure in trained.figures.values():
    display(figure)

# %% [markdown]
# ## As a job task
#
# This stage runs as the `train` task of the bundle's `monthly` job, through the
# pipeline notebook [`pipelines/train.ipynb`](pipelines/train.ipynb), which declares its
# parameters; `dbxml run` runs that job locally (see [the runner](32_runner.ipynb)).
