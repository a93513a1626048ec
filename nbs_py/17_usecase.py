# %% [markdown]
# # The use case
# > What the pipeline is about, declared in one object: the sources, the silver, gold and
# > model tables, and the few functions that are about the subject rather than the pipeline.
#
# The stages are the same whatever the data: land a month, keep it in bronze as it came,
# type and check it against its contract, conform it, build a mart and one feature row per
# record, train a classifier, score, monitor, retrain. What changes with the subject is
# small and declared here: which source arrives month by month (the *fact*) and which
# arrive whole (the *dimensions*), how a typed record is conformed, what the mart and the
# features are, and which column the model learns.
#
# A `UseCase` holds exactly that. The stages ask the target for it (`use_case_of`), so a
# team replaces the flights demo by writing one module and naming it in `dbxml.toml`
# (`use_case = "mypackage.sales:SALES"`), without editing a stage. The demo itself is
# one such module, [the flights use case](18_flights.ipynb); a second, tiny one (hourly
# weather readings, "rain in the next hour") lives in the tests and runs through the same
# job graph (`tests/support/rain.py`). The guide that walks through it:
# `nbs/guides/bring-your-own-data.md`.

# %%
#| default_exp usecase

# %%
#| export
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from dbxml.config import DbxmlError, Target
from dbxml.contract import Contract
from dbxml.tables import TableSpec

# %%
#| hide
from dataclasses import replace

from fastcore.test import test_eq, test_fail

from dbxml.config import scratch_target


# %% [markdown]
# ## What a use case declares
#
# The names follow from the fact source: its batches land in `<raw_root>/<fact>/YYYY-MM.csv`,
# bronze keeps them in `bronze_<fact>` and silver in `silver_<fact>`; every dimension lands
# as `<raw_root>/<name>.csv` and becomes `silver_<name>` as its contract says. The gold
# tables and the model are named by their specs and `model`. The functions take and give
# Spark DataFrames: `conform(spark, target, typed)` gets one month's typed fact rows and
# may join the silver dimensions; `mart(rows)` and `featurize(rows)` get the month's silver
# rows. Both gold tables carry a `month` column, which the stages replace month by month.

# %%
#| export
@dataclass(frozen=True)
class UseCase:
    "What the pipeline is about: its sources, tables and model, and the functions that are about the subject."
    name: str  # the subject in a word, e.g. `flights`, for messages
    fact: Contract  # the monthly source: lands as `<raw_root>/<fact.name>/YYYY-MM.csv`, one batch a month
    dimensions: tuple[Contract, ...]  # sources that land whole as `<raw_root>/<name>.csv`, refined before any month
    silver: TableSpec  # `silver_<fact.name>`: the conformed records, one per `silver.keys`
    conform: Callable  # (spark, target, a month's typed fact rows) -> rows with `silver`'s columns and what the rules read
    marts: TableSpec  # the gold mart, with a `month` column
    mart: Callable  # (a month's silver rows) -> the mart's rows
    features: TableSpec  # one row per silver record: `key`, `month`, the model's features and the label
    featurize: Callable  # (a month's silver rows) -> the feature rows
    key: str  # the feature rows' key, also the predictions'
    label: str  # the 0/1 outcome the model learns; null where it is not known
    model_features: tuple[str, ...]  # the columns of `features` the model reads; STRING ones are categories
    model: str  # the registered model's own name: `catalog.schema.<model>`
    prediction: str = "probability"  # the predictions' probability column
    decision: str = "predicted"  # the predictions' 0/1 column
    carried: tuple[str, ...] = ()  # columns of `features` the predictions keep as they are
    counted: str | None = None  # a column of `marts` whose month total is the month's silver rows (gold checks it)
    land: Callable | None = None  # (target) -> paths: fills the landing zone; None when files arrive on their own

    def __post_init__(self):
        "Refuse a declaration the stages could not run, naming what is wrong."
        problems = []
        if self.silver.table != f"silver_{self.fact.name}":
            problems.append(f"the silver table must be silver_{self.fact.name}, not {self.silver.table}")
        feature_columns = set(self.features.column_names)
        wanted = [self.key, "month", self.label, *self.model_features, *self.carried]
        problems += [f"features lacks {column}" for column in wanted if column not in feature_columns]
        if "month" not in self.marts.column_names:
            problems.append("the mart lacks a month column")
        if self.counted and self.counted not in self.marts.column_names:
            problems.append(f"the mart lacks the counted column {self.counted}")
        names = [self.fact.name, *(dimension.name for dimension in self.dimensions)]
        if len(set(names)) != len(names):
            problems.append(f"two sources share a name: {', '.join(names)}")
        if problems:
            raise DbxmlError(f"use case {self.name!r}: " + "; ".join(problems) + ".")

    @property
    def sources(self) -> dict[str, Contract]:
        "Every source's contract by name, the fact first."
        return {contract.name: contract for contract in (self.fact, *self.dimensions)}

    @property
    def categorical(self) -> list[str]:
        "The model features that are categories (STRING columns of `features`)."
        kinds = {column.name: column.type for column in self.features.columns}
        return [name for name in self.model_features if kinds[name] == "STRING"]


# %% [markdown]
# ## Which use case a target runs
#
# `dbxml.toml` names it once (`use_case = "module:NAME"`); a target may name its own, and
# `DBXML_USE_CASE` overrides both, like any field. Unset, it is the demo.

# %%
#| export
DEFAULT_USE_CASE = "dbxml.flights:FLIGHTS"

def load_use_case(reference: str = DEFAULT_USE_CASE,  # `module:NAME`, e.g. `mypackage.sales:SALES`
                 ) -> UseCase:
    "The `UseCase` that `reference` names; a `DbxmlError` saying what is missing if it names none."
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise DbxmlError(f"use_case {reference!r} is not of the form module:NAME, e.g. {DEFAULT_USE_CASE}.")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise DbxmlError(f"use_case {reference!r}: no module {error.name!r} can be imported. Install the "
                         "package that defines it, or fix use_case in dbxml.toml.") from None
    found = getattr(module, attribute, None)
    if type(found).__name__ != UseCase.__name__:  # by name: a notebook that declares the class again still knows it
        raise DbxmlError(f"use_case {reference!r}: {module_name} has no UseCase called {attribute}.")
    return found

def use_case_of(target: Target) -> UseCase:
    "The use case `target` runs (its `use_case`, else the demo)."
    return load_use_case(target.use_case or DEFAULT_USE_CASE)


# %% [markdown]
# The demo is what a fresh clone runs; a wrong name gets one clear message:

# %%
flights = use_case_of(scratch_target())
test_eq((flights.fact.name, flights.silver.table, flights.model), ("flights", "silver_flights", "flight_delay"))
test_eq(list(flights.sources), ["flights", "airlines", "airports", "planes", "weather"])
test_eq(flights.categorical, ["carrier", "origin", "dest"])
test_fail(lambda: load_use_case("dbxml.flights"), contains="not of the form module:NAME")
test_fail(lambda: load_use_case("sales_model:SALES"), contains="no module 'sales_model'")
test_fail(lambda: load_use_case("dbxml.flights:SALES"), contains="has no UseCase called SALES")

# %% [markdown]
# A declaration the stages could not run is refused when it is made, not months later:

# %%
test_fail(lambda: replace(flights, label="late", counted="trips"),
          contains="features lacks late; the mart lacks the counted column trips")
test_fail(lambda: replace(flights, dimensions=(*flights.dimensions, flights.fact)), contains="two sources share a name")
