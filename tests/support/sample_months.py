"""Land a down-sampled copy of the real 2013 flights in a local home: every Nth flight of each month, with the
original header and field text, and the dimension files whole. A month landed this way is what `dbxml run` then
finds in the raw zone (landing leaves files that are already there alone), so an end-to-end run of the job graph
stays affordable and still sees the real seasons.

    python sample_months.py HOME 2013-01..2013-04 [EVERY]
"""
import io
import sys
import zipfile
from pathlib import Path

from dbxml.config import load_target, with_overrides
from dbxml.sources import (
    csv_text,
    flights_file,
    months_between,
    package_data_dir,
    split_flights_by_month,
    write_atomically,
)


def land_sample(home: Path, months: list[str], every: int = 4) -> dict[str, int]:
    "Land every `every`-th flight of each of `months` under `home`'s raw zone; returns the flights landed per month."
    target = with_overrides(load_target("local", environ={}), home=Path(home))
    with zipfile.ZipFile(package_data_dir() / "flights.csv.zip") as archive, archive.open("flights.csv") as raw:
        by_month = split_flights_by_month(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
    landed = {}
    for month in months:
        header, *rows = by_month[month]
        write_atomically(flights_file(target, month), csv_text([header, *rows[::every]]))
        landed[month] = len(rows[::every])
    return landed


if __name__ == "__main__":
    home, months, *every = sys.argv[1:]
    print(land_sample(Path(home), months_between(*months.split("..")), *map(int, every)))
