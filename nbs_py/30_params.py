# %% [markdown]
# # Job parameters
# > One declaration of a notebook's parameters, typed the same way whether papermill or
# > Databricks passes them; and task values, the way one task tells the next what it found.
#
# A pipeline notebook declares its parameters once, in the cell tagged `parameters`,
# with defaults whose types say what each parameter is: `window = 3` is an integer.
# Locally, papermill injects the run's values after that cell. On Databricks, a job
# passes its `base_parameters` as notebook *widgets*, and widgets hold only strings.
# `job_parameters` is the one helper that closes the gap: on Databricks it reads each
# widget and converts it to the type of the default; elsewhere it returns the values as
# they are. The local runner converts its strings with the same `coerce`, so a bad
# value fails the same way on both engines, with the parameter's name in the message.
#
# The second half is *task values*: a task can hand small results to the tasks after
# it (`{{tasks.monitor.values.retrain}}` in the job graph). On Databricks they go
# through `dbutils.jobs.taskValues`; locally they are written into the executed notebook
# as an output of their own type, where the runner reads them back, so every value a
# task passed on is also visible in the notebook it leaves behind.

# %%
#| default_exp params

# %%
#| export
from __future__ import annotations

import json

from IPython.display import display

from dbxml.config import DbxmlError, on_databricks

# %%
#| hide
from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## Strings back to typed values
#
# Booleans accept the spellings a person or a YAML file would use; numbers must parse
# whole; a default of `None` leaves the string as it came. Anything else is a
# `DbxmlError` that names the parameter and the type it expected.

# %%
#| export
TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off")

def coerce(name: str,  # the parameter's name, for the error message
           value,  # the value as passed: a string from a widget or the command line, or already typed
           default,  # the parameter's default in the `parameters` cell; its type is the target type
          ):
    "`value` converted to the type of `default`; a `DbxmlError` naming `name` when it does not fit."
    if default is None or not isinstance(value, str):
        return value
    text = value.strip()
    if isinstance(default, bool):
        if text.lower() in TRUE_WORDS + FALSE_WORDS:
            return text.lower() in TRUE_WORDS
        expected = "true or false"
    elif isinstance(default, int | float):
        try:
            return type(default)(text)
        except ValueError:
            expected = "an integer" if isinstance(default, int) else "a number"
    elif isinstance(default, list | dict):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, type(default)):
            return parsed
        expected = f"a JSON {type(default).__name__}"
    else:
        return value
    raise DbxmlError(f"parameter {name}: expected {expected}, got {value!r}.")


# %%
test_eq(coerce("window", "3", 3), 3)
test_eq(coerce("rate", "0.25", 0.5), 0.25)
test_eq(coerce("dry_run", "TRUE", False), True)
test_eq(coerce("months", '["2013-01"]', []), ["2013-01"])
test_eq(coerce("month", "2013-05", "2013-01"), "2013-05")
test_eq(coerce("window", 4, 3), 4)  # papermill passes typed values through
test_fail(lambda: coerce("window", "three", 3), contains="parameter window: expected an integer, got 'three'")
test_fail(lambda: coerce("dry_run", "maybe", False), contains="expected true or false")


# %% [markdown]
# ## The one helper a pipeline notebook calls
#
# Right after its `parameters` cell, a pipeline notebook passes its parameters through
# `job_parameters` and uses the dictionary it gets back. On Databricks each parameter
# becomes a text widget whose default is the notebook's default, so the notebook also
# runs by hand in the workspace with the same defaults.

# %%
#| export
def widget_values(defaults: dict) -> dict[str, str]:
    "The Databricks widgets for `defaults` (created with the defaults as text when the job passed none)."
    from databricks.sdk.runtime import dbutils  # only importable with a Databricks runtime or credentials

    values = {}
    for name, default in defaults.items():
        dbutils.widgets.text(name, "" if default is None else render_value(default))
        values[name] = dbutils.widgets.get(name)
    return values

def job_parameters(**defaults,  # the notebook's parameters, as its `parameters` cell (or papermill) set them
                  ) -> dict:
    "The parameters of this run: widget values typed like the defaults on Databricks, else `defaults` as they are."
    values = widget_values(defaults) if on_databricks() else defaults
    return {name: coerce(name, values[name], default) for name, default in defaults.items()}


# %% [markdown]
# In a pipeline notebook:
#
# ```python
# # a cell tagged `parameters`
# target_name = "local"
# month = "2013-01"
# window = 3
# ```
#
# ```python
# params = job_parameters(target_name=target_name, month=month, window=window)
# params["window"] + 1  # an int on every engine
# ```

# %%
params = job_parameters(target_name="local", month="2013-01", window=3)
test_eq(params, {"target_name": "local", "month": "2013-01", "window": 3})

# %% [markdown]
# ## Task values
#
# Values are rendered the way Databricks renders them in a `{{tasks...}}` reference:
# booleans as `true`/`false`, numbers and strings as themselves. The local record is a
# display output with its own MIME type, so it travels inside the executed notebook.

# %%
#| export
TASK_VALUES_MIME = "application/vnd.dbxml.task-values+json"

def render_value(value) -> str:
    "`value` as text, the way a `{{tasks.<key>.values.<name>}}` reference shows it."
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)

def set_task_values(**values) -> dict:
    "Hand `values` (JSON-serialisable) to the tasks downstream; returns them."
    if on_databricks():
        from databricks.sdk.runtime import dbutils

        for key, value in values.items():
            dbutils.jobs.taskValues.set(key=key, value=value)
    else:
        display({TASK_VALUES_MIME: values, "text/plain": f"task values: {values}"}, raw=True)
    return values

def task_values(notebook,  # an executed notebook (`nbformat.NotebookNode` or its dict)
               ) -> dict:
    "Every task value a notebook set, the last setting of a key winning."
    found = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            found.update(output.get("data", {}).get(TASK_VALUES_MIME, {}))
    return found


# %%
test_eq(render_value(True), "true")
test_eq(render_value(0.7431), "0.7431")
test_eq(render_value("retrain signal"), "retrain signal")
set_task_values(retrain=True, reason="first model")

# %%
executed = {"cells": [{"outputs": [{"data": {TASK_VALUES_MIME: {"retrain": True, "reason": "a"}}}]},
                      {"outputs": [{"data": {"text/plain": "x"}}, {"data": {TASK_VALUES_MIME: {"reason": "b"}}}]}]}
test_eq(task_values(executed), {"retrain": True, "reason": "b"})
