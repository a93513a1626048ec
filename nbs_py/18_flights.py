# %% [markdown]
# # The flights use case
# > The demo, declared: New York City's 2013 flights a month at a time, four dimensions,
# > and a model of which departures will be 15 minutes late.
#
# This is the one `UseCase` a fresh clone runs (`use_case = "dbxml.flights:FLIGHTS"` in
# `dbxml.toml`). Its pieces are written, explained and tested where their stage is
# explained: the contracts in [the landing contract](10_contract.ipynb), the silver table
# and its conforming joins in [silver](13_silver.ipynb), the mart and the features in
# [gold](14_gold.ipynb). Here they are put together, and the model's reading of them is
# decided. A team that brings its own data writes a module like this one
# (`nbs/guides/bring-your-own-data.md`).

# %%
#| default_exp flights

# %%
#| export
from __future__ import annotations

from dbxml.contract import CONTRACTS
from dbxml.gold import FEATURES, FEATURES_SPEC, LABEL, ONTIME_SPEC, flight_features, ontime
from dbxml.silver import FLIGHTS_SPEC, conform_flights
from dbxml.sources import DIMENSIONS, land_source_files
from dbxml.usecase import UseCase

# %%
#| hide
from fastcore.test import test_eq

from dbxml.contract import FLIGHTS as FLIGHTS_CONTRACT

# %% [markdown]
# The model reads every feature of the gold table but `day_of_year`: a model trained on
# three months has never seen the days of the month it scores, so that feature could
# only mislead it. The predictions keep each flight's scheduled departure, so a reader of
# `flight_delay_predictions` needs no join to know when the flight leaves.

# %%
#| export
FLIGHTS = UseCase(
    name="flights",
    fact=CONTRACTS["flights"],
    dimensions=tuple(CONTRACTS[name] for name in DIMENSIONS),
    silver=FLIGHTS_SPEC, conform=conform_flights,
    marts=ONTIME_SPEC, mart=ontime, counted="flights",
    features=FEATURES_SPEC, featurize=flight_features, key="flight_id", label=LABEL,
    model_features=tuple(name for name in FEATURES if name != "day_of_year"), model="flight_delay",
    prediction="delay_probability", decision="predicted_delayed", carried=("scheduled_departure",),
    land=land_source_files)

# %% [markdown]
# What the stages will build from it, by name:

# %%
test_eq(FLIGHTS.fact, FLIGHTS_CONTRACT)
test_eq([FLIGHTS.silver.table, FLIGHTS.marts.table, FLIGHTS.features.table],
        ["silver_flights", "gold_ontime", "gold_flight_features"])
test_eq(len(FLIGHTS.model_features), len(FEATURES) - 1)
test_eq(FLIGHTS.categorical, ["carrier", "origin", "dest"])
