# %% [markdown]
# # Targets
# > Where dbxml runs: one file names every target, and one function reads it.
#
# A *target* says everything that differs between running on a laptop and running in a
# Databricks workspace: which Spark to use, which Unity Catalog catalog and schema hold
# the tables, where raw files come from, where storage lives and where MLflow keeps
# runs and models. The targets are `local` (the default: local Spark with Delta and an
# MLflow SQLite store, no account needed), `connect` (the same lakehouse through a
# Spark Connect server, which is how Databricks serverless talks), and `dev`,
# `staging`, `prod` on Databricks.
#
# They live in one reviewed file, `dbxml.toml` at the top of the repository, so that a
# change of catalog or storage account is a pull request like any other. An
# environment variable `DBXML_<FIELD>` overrides one field for one process (CI uses
# this to point a test at a temporary folder), and `DBXML_TARGET` picks the target.

# %%
#| default_exp config

# %%
#| export
from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## Errors that speak to the user
#
# Everything the user can get wrong (a mistyped target, a malformed value, a missing
# Java) raises one exception class. The command line catches it once, prints its
# message and exits non-zero; any other exception is a bug and keeps its traceback.

# %%
#| export
class DbxmlError(Exception):
    "A problem the user can fix; the message says what to do. The CLI prints it without a traceback."


# %% [markdown]
# ## The `Target` record

# %%
#| export
SPARK_MODES = ("local", "connect", "databricks")  # how a target gets its Spark session

@dataclass(frozen=True)
class Target:
    "Everything that differs between places dbxml runs, read from `dbxml.toml`."
    name: str  # the target's name, e.g. `local` or `prod`
    spark: str  # one of `SPARK_MODES`
    catalog: str  # Unity Catalog catalog (locally folded into a database name)
    schema: str  # Unity Catalog schema inside `catalog`
    raw_root: str  # the landing zone for raw files: a folder, or a Unity Catalog volume path
    storage_root: str  # where managed tables live
    mlflow_tracking_uri: str  # where MLflow runs are tracked
    mlflow_registry_uri: str  # where models are registered (`databricks-uc` on Databricks)
    home: Path | None = None  # local targets: the one folder every local file lives in
    spark_remote: str | None = None  # `spark = "connect"`: the Spark Connect URL
    use_case: str | None = None  # the `UseCase` the stages run, `module:NAME` (default: the flights demo)

    @property
    def is_local(self) -> bool:
        "True when this target runs on this machine rather than in a workspace."
        return self.spark != "databricks"


# %%
#| export
TARGET_FIELDS = tuple(field.name for field in fields(Target) if field.name != "name")
REQUIRED_FIELDS = ("spark", "catalog", "schema", "raw_root", "storage_root",
                   "mlflow_tracking_uri", "mlflow_registry_uri")
CONFIG_FILE = "dbxml.toml"


# %% [markdown]
# ## Finding and reading the file
#
# The file is found the way git finds its repository: from the working directory
# upwards. That works from the repository root, from `nbs/` while a notebook runs, and
# from the bundle's files in a Databricks workspace. `DBXML_CONFIG` names another file.

# %%
#| export
def find_config(start: Path | str | None = None,  # folder to search upwards from (default: cwd)
                environ: Mapping[str, str] | None = None,  # environment (default: `os.environ`)
               ) -> Path:
    "The path of `dbxml.toml`: `DBXML_CONFIG` if set, else the nearest one at or above `start`."
    environ = os.environ if environ is None else environ
    if environ.get("DBXML_CONFIG"):
        path = Path(environ["DBXML_CONFIG"]).expanduser()
        if not path.is_file():
            raise DbxmlError(f"DBXML_CONFIG names {path}, which is not a file.")
        return path.resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder / CONFIG_FILE
    raise DbxmlError(f"no {CONFIG_FILE} found in {here} or any folder above it. "
                     "Run dbxml from inside the repository, or set DBXML_CONFIG.")


# %%
repo_config = find_config()
assert repo_config.name == "dbxml.toml" and repo_config.parent.joinpath("settings.ini").exists()
test_fail(lambda: find_config("/"), contains="no dbxml.toml found")
test_fail(lambda: find_config(environ={"DBXML_CONFIG": "/nowhere.toml"}), contains="not a file")


# %%
#| export
def read_config(path: Path | str) -> dict:
    "The parsed contents of a config file; malformed TOML is a `DbxmlError` naming file and line."
    try:
        config = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise DbxmlError(f"{path} is not valid TOML: {error}") from None
    if not isinstance(config.get("targets"), dict) or not config["targets"]:
        raise DbxmlError(f"{path} defines no targets: add a [targets.local] table.")
    return config


# %%
def write_config(text: str) -> Path:
    "Write `text` to a temporary config file (for the examples below)."
    path = Path(tempfile.mkdtemp()) / "dbxml.toml"
    path.write_text(text)
    return path

test_fail(lambda: read_config(write_config("[targets.local\nspark = 1")), contains="is not valid TOML")
test_fail(lambda: read_config(write_config("default_target = 'local'")), contains="defines no targets")

# %% [markdown]
# ## Validation
#
# Each check names what is wrong *and* what would be right, because the person reading
# the message is usually in the middle of something else. Names that end up in SQL
# (catalog, schema) must be plain identifiers: that rules out injection and quoting
# surprises on every engine. A double underscore is reserved, because locally the
# catalog and schema are folded into one database name with `__` between them.

# %%
#| export
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

def check_identifier(value: str,  # the name to check
                     what: str,  # what it names, for the message
                    ) -> str:
    "`value` if it is a plain SQL identifier without a double underscore, else a `DbxmlError`."
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value) or "__" in value:
        raise DbxmlError(f"{what} {value!r} is not a valid name: use letters, digits and single "
                         "underscores, starting with a letter or underscore.")
    return value


# %%
test_eq(check_identifier("dbxml_dev", "catalog"), "dbxml_dev")
for bad in ["dev-1", "1dev", "a__b", "dev; drop table x", "", 3]:
    test_fail(lambda: check_identifier(bad, "catalog"), contains="is not a valid name")


# %%
#| export
def check_fields(name: str,  # target name
                 values: Mapping[str, object],  # the target's fields as read
                ) -> None:
    "Raise a `DbxmlError` naming the first unknown, missing or malformed field of target `name`."
    unknown = sorted(set(values) - set(TARGET_FIELDS))
    if unknown:
        raise DbxmlError(f"target {name!r} has unknown field {unknown[0]!r}. "
                         f"Valid fields: {', '.join(TARGET_FIELDS)}.")
    missing = [field for field in REQUIRED_FIELDS if field not in values]
    if missing:
        raise DbxmlError(f"target {name!r} lacks field {missing[0]!r}.")
    for field, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise DbxmlError(f"target {name!r}: {field} must be a non-empty string, got {value!r}.")
    if values["spark"] not in SPARK_MODES:
        raise DbxmlError(f"target {name!r}: spark = {values['spark']!r} is not valid. "
                         f"Valid values: {', '.join(SPARK_MODES)}.")
    if values["spark"] == "connect" and "spark_remote" not in values:
        raise DbxmlError(f"target {name!r} uses Spark Connect but sets no spark_remote "
                         "(for example sc://localhost:15002).")
    if values["spark"] != "databricks" and "home" not in values:
        raise DbxmlError(f"target {name!r} runs locally but sets no home folder.")
    check_identifier(values["catalog"], f"target {name!r}: catalog")
    check_identifier(values["schema"], f"target {name!r}: schema")


# %% [markdown]
# ## Loading a target
#
# `load_target` is what the rest of dbxml calls. It picks the target (argument, then
# `DBXML_TARGET`, then the file's `default_target`), applies `DBXML_<FIELD>` overrides,
# validates, resolves `home` against the folder of the config file and substitutes
# `{home}` in the other values.

# %%
#| export
def load_target(name: str | None = None,  # target name (default: `DBXML_TARGET`, then the file's default)
                config_path: Path | str | None = None,  # config file (default: `find_config()`)
                environ: Mapping[str, str] | None = None,  # environment (default: `os.environ`)
               ) -> Target:
    "The validated `Target` called `name`, with environment overrides applied."
    environ = os.environ if environ is None else environ
    path = Path(config_path) if config_path else find_config(environ=environ)
    config = read_config(path)
    targets = config["targets"]
    name = name or environ.get("DBXML_TARGET") or config.get("default_target", "local")
    if name not in targets:
        raise DbxmlError(f"unknown target {name!r}. Valid targets: {', '.join(targets)} (from {path}).")
    values = dict(targets[name])
    if "use_case" in config and "use_case" not in values:  # the file's use case, unless the target names its own
        values["use_case"] = config["use_case"]
    values.update({field: environ[f"DBXML_{field.upper()}"] for field in TARGET_FIELDS
                   if environ.get(f"DBXML_{field.upper()}")})
    check_fields(name, values)
    home = (path.parent / Path(values["home"]).expanduser()).resolve() if "home" in values else None
    if home is not None:
        values = {field: value.replace("{home}", str(home)) for field, value in values.items()}
    elif any("{home}" in value for value in values.values()):
        raise DbxmlError(f"target {name!r} uses {{home}} but sets no home folder.")
    return Target(name=name, **{**values, "home": home})


# %% [markdown]
# The repository's own file defines the five targets; `local` is the default and keeps
# everything under `.dbxml/` next to `dbxml.toml`:

# %%
local = load_target("local", repo_config, environ={})
test_eq(local.spark, "local")
test_eq(local.home, repo_config.parent / ".dbxml")
test_eq(local.mlflow_tracking_uri, f"sqlite:///{repo_config.parent}/.dbxml/mlflow.db")
assert local.is_local
prod = load_target("prod", repo_config, environ={})
test_eq((prod.catalog, prod.mlflow_registry_uri, prod.home), ("dbxml_prod", "databricks-uc", None))
assert not prod.is_local
test_eq(load_target(config_path=repo_config, environ={"DBXML_TARGET": "staging"}).name, "staging")

# %% [markdown]
# A mistyped target lists the valid ones; an override is validated like the file:

# %%
test_fail(lambda: load_target("stagging", repo_config, environ={}),
          contains="unknown target 'stagging'. Valid targets: local, connect, dev, staging, prod")
test_eq(load_target("local", repo_config, environ={"DBXML_CATALOG": "sandbox"}).catalog, "sandbox")
test_fail(lambda: load_target("local", repo_config, environ={"DBXML_SPARK": "yarn"}),
          contains="spark = 'yarn' is not valid. Valid values: local, connect, databricks")
test_fail(lambda: load_target("dev", repo_config, environ={"DBXML_SCHEMA": "my-schema"}),
          contains="is not a valid name")

# %% [markdown]
# Malformed files fail on the field at fault:

# %%
minimal = """[targets.t]
spark = "local"
home = "h"
catalog = "c"
schema = "s"
raw_root = "r"
storage_root = "{home}/w"
mlflow_tracking_uri = "sqlite:///{home}/m.db"
mlflow_registry_uri = "sqlite:///{home}/m.db"
"""
t = load_target("t", write_config(minimal), environ={})
test_eq(t.storage_root, f"{t.home}/w")
test_fail(lambda: load_target("t", write_config(minimal + "sprak = 'local'\n"), environ={}),
          contains="unknown field 'sprak'")
test_fail(lambda: load_target("t", write_config(minimal.replace('catalog = "c"', "catalog = 7")), environ={}),
          contains="catalog must be a non-empty string")
test_fail(lambda: load_target("t", write_config(minimal.replace('spark = "local"', 'spark = "connect"')), environ={}),
          contains="sets no spark_remote")
test_fail(lambda: load_target("t", write_config(minimal.replace('home = "h"\n', "")), environ={}),
          contains="sets no home folder")


# %% [markdown]
# `with_overrides` derives a target for one use, for example a test that needs its own
# home folder, without touching the file or the environment:

# %%
#| export
def target_values(target: Target) -> dict[str, str]:
    "The fields of `target` as the strings a config file would hold (unset ones left out)."
    return {field: str(getattr(target, field)) for field in TARGET_FIELDS
            if getattr(target, field) is not None}

def with_overrides(target: Target,  # the target to start from
                   **changes,  # fields to change, e.g. `home=Path("/tmp/x")`
                  ) -> Target:
    "A validated copy of `target` with `changes`; a new `home` also moves every value under the old one."
    if "home" in changes and target.home is not None:
        old_home, new_home = str(target.home), Path(changes["home"]).resolve()
        moved = {field: value.replace(old_home, str(new_home))
                 for field, value in target_values(target).items() if field != "home"}
        changes = moved | changes | {"home": new_home}
    result = replace(target, **changes)
    check_fields(result.name, target_values(result))
    return result


# %% [markdown]
# Inside a Databricks runtime some things come from the workspace instead (the Spark
# session, the job's parameters and task values); the runtime says where it is by an
# environment variable.

# %%
#| export
def on_databricks(environ: Mapping[str, str] | None = None) -> bool:
    "True inside a Databricks runtime (a notebook or job task on a cluster or serverless)."
    environ = os.environ if environ is None else environ
    return "DATABRICKS_RUNTIME_VERSION" in environ


# %%
test_eq(on_databricks({"DATABRICKS_RUNTIME_VERSION": "16.4"}), True)
test_eq(on_databricks({}), False)


# %% [markdown]
# Examples and tests need a lakehouse of their own. `scratch_target` gives a copy of a
# target whose home is a fresh temporary folder, the same one for the whole process, so
# every example in a process shares one Spark session and one metastore, and parallel
# test processes never share Derby (which admits one JVM at a time). The target comes from
# the config file found as usual (`DBXML_CONFIG`, else upwards from the working folder),
# without the environment's overrides of its fields.

# %%
#| export
@functools.cache
def scratch_target(name: str = "local",  # the target to copy
                  ) -> Target:
    "Target `name` with its home in a new temporary folder, made once per process (for examples and tests)."
    return with_overrides(load_target(name, find_config(), environ={}), home=Path(tempfile.mkdtemp(prefix="dbxml-")))


# %%
assert scratch_target() is scratch_target() and scratch_target().home.name.startswith("dbxml-")
test_eq(scratch_target().mlflow_tracking_uri, f"sqlite:///{scratch_target().home}/mlflow.db")

# %%
moved = with_overrides(local, home=Path("/tmp/elsewhere"))
test_eq(moved.mlflow_tracking_uri, "sqlite:////tmp/elsewhere/mlflow.db")
test_eq(moved.storage_root, "/tmp/elsewhere/warehouse")
test_eq(local.home, repo_config.parent / ".dbxml")  # the original is unchanged
test_fail(lambda: with_overrides(local, catalog="no-dashes"), contains="is not a valid name")

# %%
show_doc(Target.is_local)
