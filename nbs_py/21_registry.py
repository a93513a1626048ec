# %% [markdown]
# # Registry
# > Register each trained model under `catalog.schema.flight_delay`, compare it with the
# > champion on the same held-out month, and promote it only if it passes.
#
# Every target names the model with three parts, like a table: locally the MLflow
# registry in the target's SQLite file holds `local.flights.flight_delay`; on Databricks
# the registry is Unity Catalog (`databricks-uc`), where the same name is a governed
# object with grants and lineage. Aliases, not stages, mark the roles: a new version is
# the `challenger`; the version that scores flights is the `champion`.
#
# Each version carries tags that answer the auditor's questions without opening the
# run: which table versions and months it was trained on, which commit of the code,
# and its held-out metrics. Each validation is an MLflow run of its own, with the
# decision and the evidence, and the version is tagged with the outcome.

# %%
#| default_exp registry

# %%
#| export
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pyspark.sql import SparkSession

from dbxml.config import DbxmlError, Target
from dbxml.tracking import ensure_experiment, use_mlflow
from dbxml.train import TrainedModel, evaluate, experiment_path, labelled_rows, source_commit
from dbxml.usecase import use_case_of

# %%
#| hide
from fastcore.test import test_eq, test_fail
from pyspark.sql import functions as F

from dbxml.config import load_target, scratch_target, with_overrides
from dbxml.gold import FEATURES_SPEC, build_month
from dbxml.lakehouse import cached_lakehouse
from dbxml.sources import parse_months
from dbxml.spark import get_spark
from dbxml.tables import table_version
from dbxml.train import train_model

# %% [markdown]
# ## Names and roles

# %%
#| export
CHAMPION, CHALLENGER = "champion", "challenger"

def model_name(target: Target) -> str:
    "The registered model's three-part name on `target`: `catalog.schema.<model>`, the demo's `flight_delay`."
    return f"{target.catalog}.{target.schema}.{use_case_of(target).model}"

def registry(target: Target) -> MlflowClient:
    "A client of the target's tracking server and model registry."
    use_mlflow(target)
    return MlflowClient(tracking_uri=target.mlflow_tracking_uri, registry_uri=target.mlflow_registry_uri)

def alias_version(target: Target, alias: str = CHAMPION) -> str | None:
    "The version that holds `alias`, or None if no version does (or the model is not registered yet)."
    try:
        return str(registry(target).get_model_version_by_alias(model_name(target), alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


# %%
test_eq(model_name(load_target("dev")), "dbxml_dev.flights.flight_delay")
test_eq(alias_version(with_overrides(scratch_target(), schema="no_model_here")), None)


# %% [markdown]
# ## Registering a version
#
# The tags are plain strings (Unity Catalog's rule): the data lineage as JSON, the git
# commit, and the held-out metrics rounded for reading.

# %%
#| export
def lineage_tags(trained: TrainedModel) -> dict[str, str]:
    "What a model version records about its training: data versions, months, commit and metrics."
    data = {rows_role: {"table": rows.table, "version": rows.version, "months": rows.months}
            for rows_role, rows in (("training", trained.training), ("validation", trained.validation))}
    return {"training_data": json.dumps(data, sort_keys=True), "training_table": trained.training.table,
            "training_table_version": str(trained.training.version),
            "training_months": ",".join(trained.training.months),
            "validation_month": ",".join(trained.validation.months), "git_commit": source_commit(),
            "run_id": trained.run_id,
            **{f"validation_{name}": f"{value:.6f}" for name, value in trained.metrics.items()}}

def register(target: Target, trained: TrainedModel) -> str:
    "Register the trained model as a new version, make it the challenger, and return its version."
    client = registry(target)
    version = str(mlflow.register_model(trained.model_uri, model_name(target), tags=lineage_tags(trained)).version)
    client.set_registered_model_alias(model_name(target), CHALLENGER, version)
    return version


# %% [markdown]
# ## The promotion policy
#
# Two thresholds, both on ROC AUC over the held-out month, decide whether a challenger
# may become champion. They are code, so changing them is a reviewed pull request:

# %%
#| export
@dataclass(frozen=True)
class PromotionPolicy:
    "When a challenger may replace the champion."
    min_roc_auc: float = 0.60  # absolute floor: a guess scores 0.5, the delay model about 0.67-0.72
    relative_margin: float = 0.01  # the challenger may trail the champion by at most 1% of its ROC AUC

    def judge(self, challenger: dict, champion: dict | None) -> list[str]:
        "The reasons `challenger` (its metrics) may not replace `champion` (None if there is none); empty = pass."
        reasons = []
        if challenger["roc_auc"] < self.min_roc_auc:
            reasons.append(f"ROC AUC {challenger['roc_auc']:.4f} is below the floor {self.min_roc_auc}")
        if champion is not None:
            least = champion["roc_auc"] * (1 - self.relative_margin)
            if challenger["roc_auc"] < least:
                reasons.append(f"ROC AUC {challenger['roc_auc']:.4f} trails the champion's {champion['roc_auc']:.4f} "
                               f"by more than {self.relative_margin:.0%} (needs {least:.4f})")
        return reasons

POLICY = PromotionPolicy()

def policy_markdown(policy: PromotionPolicy = POLICY) -> str:
    "The policy as a Markdown table, for the docs."
    rows = [("absolute floor", f"challenger ROC AUC ≥ {policy.min_roc_auc}"),
            ("non-regression", f"challenger ROC AUC ≥ champion ROC AUC × (1 − {policy.relative_margin})"),
            ("first model", "with no champion, only the floor applies")]
    return "\n".join(["| check | rule |", "|---|---|", *[f"| {check} | {rule} |" for check, rule in rows]])


# %%
#| exec_doc
from IPython.display import Markdown  # noqa: E402

Markdown(policy_markdown())

# %% [markdown]
# The margin tolerates noise: a month holds about 27,000 labelled flights, where the
# standard error of ROC AUC is about 0.004, and 1% of 0.68 is about two of those. A
# challenger clearly worse than the champion, or no better than a guess, never passes:

# %%
test_eq(POLICY.judge({"roc_auc": 0.70}, None), [])
test_eq(POLICY.judge({"roc_auc": 0.675}, {"roc_auc": 0.68}), [])
test_eq(len(POLICY.judge({"roc_auc": 0.66}, {"roc_auc": 0.68})), 1)
test_eq(len(POLICY.judge({"roc_auc": 0.5}, {"roc_auc": 0.68})), 2)
assert "below the floor" in POLICY.judge({"roc_auc": 0.55}, None)[0]


# %% [markdown]
# ## Validating and promoting
#
# The challenger and the champion are loaded from the registry as any consumer would
# load them, and both predict the same held-out month read from the feature table. The
# decision, its reasons and both sets of metrics are logged as a validation run, and
# the challenger's version is tagged with the outcome. Only a passing challenger moves
# the `champion` alias; the version it replaced and the reason are tagged on the new
# champion, so the champion's history can be read back from the registry alone.

# %%
#| export
@dataclass
class Decision:
    "The outcome of validating a challenger against the champion."
    model: str
    challenger: str  # version
    champion: str | None  # the champion's version at the time, if any
    month: str  # the held-out month both were judged on
    challenger_metrics: dict
    champion_metrics: dict | None
    reasons: list[str] = field(default_factory=list)  # why it may not be promoted; empty = it may
    run_id: str | None = None  # the validation run

    @property
    def promote(self) -> bool:
        "Whether the challenger passed."
        return not self.reasons

def predict_probabilities(model_uri: str, features: pd.DataFrame):
    "The delay probabilities of the model at `model_uri` (any `models:/` URI) for `features`."
    return mlflow.pyfunc.load_model(model_uri).predict(features)[:, 1]


# %% [markdown]
# `validate` scores the held-out month with both models and judges the challenger by
# the policy; the decision and both sets of metrics are logged as one MLflow run.

# %%
#| export
def validate(spark: SparkSession, target: Target,
             version: str,  # the challenger's version
             month: str,  # the held-out month to judge both on
             policy: PromotionPolicy = POLICY,
            ) -> Decision:
    "Judge model `version` against the champion on `month`, log the decision, and tag the version with it."
    name = model_name(target)
    champion = alias_version(target)
    if champion == version:
        raise DbxmlError(f"{name} version {version} is already the champion: nothing to validate.")
    rows = labelled_rows(spark, target, [month])
    features, labels = rows.to_pandas()
    challenger_metrics = evaluate(labels, predict_probabilities(f"models:/{name}/{version}", features))
    champion_metrics = (None if champion is None else
                        evaluate(labels, predict_probabilities(f"models:/{name}/{champion}", features)))
    decision = Decision(name, version, champion, month, challenger_metrics, champion_metrics,
                        policy.judge(challenger_metrics, champion_metrics))
    with mlflow.start_run(experiment_id=ensure_experiment(target, experiment_path(target)),
                          run_name=f"validate v{version} on {month}") as run:
        mlflow.log_params({"challenger": version, "champion": champion or "none", "month": month,
                           "table_version": rows.version, **asdict(policy)})
        mlflow.log_metrics({f"challenger_{key}": value for key, value in challenger_metrics.items()})
        if champion_metrics:
            mlflow.log_metrics({f"champion_{key}": value for key, value in champion_metrics.items()})
        mlflow.set_tags({"dbxml.stage": "validate", "decision": "promote" if decision.promote else "reject"})
        decision.run_id = run.info.run_id
        mlflow.log_dict(asdict(decision), "decision.json")
    client = registry(target)
    for key, value in {"validation_status": "passed" if decision.promote else "failed",
                       "validation_run_id": decision.run_id, "validated_on": month,
                       "validation_reasons": "; ".join(decision.reasons) or "passed every check"}.items():
        client.set_model_version_tag(name, version, key, value)
    return decision


# %% [markdown]
# `promote` moves the alias only for a passing decision, and tags the new champion
# with the version it replaced and why.

# %%
#| export
def promote(target: Target, decision: Decision,
            why: str,  # what caused the training, e.g. `first model` or `drift in 2013-07`
           ) -> bool:
    "Make the challenger the champion if it passed validation; True if it did."
    if not decision.promote:
        return False
    client = registry(target)
    client.set_registered_model_alias(decision.model, CHAMPION, decision.challenger)
    for key, value in {"promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "promotion_reason": why, "replaced_version": decision.champion or "none"}.items():
        client.set_model_version_tag(decision.model, decision.challenger, key, value)
    return True


# %% [markdown]
# The champion's history, read from the registry: every version ever promoted, when,
# why, and what it replaced.

# %%
#| export
def champion_history(target: Target) -> pd.DataFrame:
    "Every version that became champion, oldest first, with its reasons and held-out metrics."
    client = registry(target)
    versions = client.search_model_versions(f"name = '{model_name(target)}'")
    rows = [{"version": int(version.version), "promoted_at": version.tags["promoted_at"],
             "reason": version.tags.get("promotion_reason"), "replaced": version.tags.get("replaced_version"),
             "training_months": version.tags.get("training_months"),
             "validated_on": version.tags.get("validated_on"),
             "roc_auc": float(version.tags.get("validation_roc_auc", "nan"))}
            for version in versions if "promoted_at" in version.tags]
    columns = ["version", "promoted_at", "reason", "replaced", "training_months", "validated_on", "roc_auc"]
    return pd.DataFrame(rows, columns=columns).sort_values(["promoted_at", "version"]).reset_index(drop=True)


# %% [markdown]
# ## Walking back from a model to its data
#
# A version's run recorded its training and validation rows as `mlflow.data` inputs
# whose source is a Delta table and version. `training_sources` reads them back, and
# `VERSION AS OF` reproduces exactly those rows.

# %%
#| export
def training_sources(target: Target,
                     version: str,  # a version of the target's model
                    ) -> dict[str, dict]:
    "The Delta table and version behind each input of the run that trained `version`, by context."
    client = registry(target)
    run = client.get_run(client.get_model_version(model_name(target), version).run_id)
    sources = {}
    for dataset_input in run.inputs.dataset_inputs:
        context = {tag.key: tag.value for tag in dataset_input.tags}.get("mlflow.data.context")
        source = json.loads(dataset_input.dataset.source)
        sources[context] = {"table": source["delta_table_name"], "version": source["delta_table_version"],
                            "dataset": dataset_input.dataset.name}
    return sources


# %% [markdown]
# ## Example: a first champion, a rejected challenger, a fair contest
#
# The real first quarter (the examples' lakehouse, copied); the first model, trained on
# January, becomes champion because there is none:

# %%
scratch = with_overrides(scratch_target(), schema="registry")  # own tables and model: notebooks may share a home
spark = get_spark(scratch)
cached_lakehouse(spark, scratch, parse_months("2013-01..2013-03"))  # built once, copied after (15_lakehouse)
first = train_model(spark, scratch, "2013-02", window=1)
first_version = register(scratch, first)
test_eq((first_version, alias_version(scratch, CHALLENGER), alias_version(scratch)), ("1", "1", None))
decision = validate(spark, scratch, first_version, "2013-02")
test_eq((decision.promote, decision.champion), (True, None))
assert promote(scratch, decision, why="first model")
test_eq(alias_version(scratch), "1")

# %% [markdown]
# A model trained on shuffled labels is registered and validated like any other, fails,
# and leaves the champion alias where it was:

# %%
shuffled = register(scratch, train_model(spark, scratch, "2013-02", window=1, shuffle_labels=True))
rejected = validate(spark, scratch, shuffled, "2013-02")
print(rejected.reasons)
assert not rejected.promote and not promote(scratch, rejected, why="test")
test_eq((alias_version(scratch), alias_version(scratch, CHALLENGER)), ("1", shuffled))
tags = registry(scratch).get_model_version(model_name(scratch), shuffled).tags
test_eq(tags["validation_status"], "failed")
assert "below the floor" in tags["validation_reasons"] and "promoted_at" not in tags

# %% [markdown]
# A retrained model with other settings is judged by the policy against the champion's
# metrics measured now, on the same month:

# %%
contender = register(scratch, train_model(spark, scratch, "2013-02", window=1, params={"max_leaf_nodes": 15}))
contest = validate(spark, scratch, contender, "2013-02")
test_eq(contest.champion_metrics["roc_auc"], decision.challenger_metrics["roc_auc"])
test_eq(contest.promote, contest.challenger_metrics["roc_auc"] >= 0.99 * contest.champion_metrics["roc_auc"])
promote(scratch, contest, why="settings changed")
test_fail(lambda: validate(spark, scratch, alias_version(scratch), "2013-02"), contains="already the champion")
champion_history(scratch)

# %% [markdown]
# From the first version back to the table version it was trained on, and the same rows:

# %%
sources = training_sources(scratch, first_version)
test_eq(sources["training"]["version"], first.training.version)
pinned = spark.sql(f"SELECT * FROM {sources['training']['table']} VERSION AS OF {sources['training']['version']}")
training_rows = len(first.training.to_pandas()[1])
test_eq(pinned.where("month = '2013-01' AND delayed IS NOT NULL").count(), training_rows)
tags = registry(scratch).get_model_version(model_name(scratch), first_version).tags
test_eq(tags["training_table_version"], str(sources["training"]["version"]))
test_eq(json.loads(tags["training_data"])["training"]["months"], ["2013-01"])
assert len(tags["git_commit"]) in (40, len("unknown")), tags["git_commit"]  # the code, as well as the data

# %% [markdown]
# Gold moves on (January's features are lost and rebuilt: two new versions), yet the
# pinned version still gives exactly the rows the model learnt from, and its commit names
# the silver version that gold was built from:

# %%
features = FEATURES_SPEC.on(scratch)
spark.sql(f"DELETE FROM {features.name} WHERE month = '2013-01'")
build_month(spark, scratch, "2013-01")
assert table_version(spark, features.name) >= sources["training"]["version"] + 2
test_eq(pinned.where("month = '2013-01' AND delayed IS NOT NULL").count(), training_rows)
pinned_commit = spark.sql(f"DESCRIBE HISTORY {features.name}").where(F.col("version") == sources["training"]["version"])
note = json.loads(pinned_commit.first()["userMetadata"])
assert note["stage"] == "gold" and isinstance(note["silver_version"], int), note

# %% [markdown]
# ## As a job task
#
# This stage runs as the `promote` task of the bundle's `monthly` job, through the
# pipeline notebook [`pipelines/promote.ipynb`](pipelines/promote.ipynb), which declares its
# parameters; `dbxml run` runs that job locally (see [the runner](32_runner.ipynb)).
