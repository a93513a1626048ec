"""Generated faults for the lakehouse's input, and an independent reader of what became of every line.

A case is one month's flights file: a clean base (real February 2013 lines, moved to a year of
their own so every case is its own batch) with one kind of fault injected at the start, the middle
and the end (record faults: three faulty lines in one file, each accounted for on its own), or at
one of them (contract faults: the file is refused at the first). Record faults must leave every other line alone and send the faulty line to quarantine under
its rule; contract faults must refuse the whole month. The reader uses delta-rs, not Spark.
"""
from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

from deltalake import DeltaTable

from dbxml.contract import CONTRACTS

COLUMNS = list(CONTRACTS["flights"].columns)
POSITIONS = ("start", "middle", "end")
MISSING = ("", "NA")


def set_field(line: str, column: str, value: str) -> str:
    "`line` (a CSV line without quotes) with `column` set to `value`."
    fields = line.split(",")
    fields[COLUMNS.index(column)] = value
    return ",".join(fields)


def in_year(line: str, year: int) -> str:
    "A 2013 flights line moved to `year` (its `year` field and its `time_hour`)."
    fields = line.split(",")
    fields[COLUMNS.index("year")] = str(year)
    time_hour = COLUMNS.index("time_hour")
    fields[time_hour] = fields[time_hour].replace("2013-", f"{year}-", 1)
    return ",".join(fields)


# --- record faults: (name, the rule that must quarantine the line, how to break a line) ---
# Each returns the faulty line(s) as bytes; a duplicate returns the line twice.
RECORD_FAULTS = {
    "latin1_byte": ("valid_utf8", lambda line: set_field(line, "tailnum", "N1422\xe9").encode("latin-1")),
    "replacement_char": ("valid_utf8", lambda line: set_field(line, "tailnum", "N1422\ufffd").encode()),
    "wrong_type": ("typed_fields", lambda line: set_field(line, "dep_delay", "two").encode()),
    "missing_key": ("key_present", lambda line: set_field(line, "carrier", "NA").encode()),
    "impossible_value": ("positive_distance", lambda line: set_field(line, "distance", "-5").encode()),
    "no_such_date": ("real_date", lambda line: set_field(line, "day", "30").encode()),
    "other_month": ("in_batch_month", lambda line: set_field(line, "month", "3").encode()),
    "too_few_fields": ("well_formed_line", lambda line: ",".join(line.split(",")[:-3]).encode()),
    "extra_field": ("well_formed_line", lambda line: (line + ",extra").encode()),
    "stray_quote": ("well_formed_line", lambda line: set_field(line, "tailnum", '"N14228').encode()),
    "duplicate": ("unique_key", lambda line: (line + "\n" + line).encode()),
}


def file_bytes(header: str, lines: list[bytes]) -> bytes:
    "A flights file: the header and `lines`, LF-terminated."
    return b"".join(part + b"\n" for part in [header.encode(), *lines])


def at(position: str, count: int) -> int:
    "The index of the line at `position` in a file of `count` data lines."
    return {"start": 0, "middle": count // 2, "end": count - 1}[position]


def with_record_fault(header: str, lines: list[str], fault: str) -> tuple[bytes, dict[str, bytes]]:
    "The file with `fault` injected into the lines at the start, the middle and the end; the faulty line per position."
    broken = {position: RECORD_FAULTS[fault][1](lines[at(position, len(lines))]) for position in POSITIONS}
    by_index = {at(position, len(lines)): line for position, line in broken.items()}
    content = file_bytes(header, [by_index.get(index, line.encode()) for index, line in enumerate(lines)])
    return content, {position: line.split(b"\n")[0] for position, line in broken.items()}


# --- contract faults: the whole month is refused. (name, words the refusal contains, make the drop) ---
# Each maker returns {file name suffix: bytes}; several entries mean several drops.
def _line_fault(insert: bytes):
    "A maker that puts `insert` into the line at the position."
    def make(header, lines, position):
        index = at(position, len(lines))
        changed = [line.encode() for line in lines]
        changed[index] = changed[index][:8] + insert + changed[index][8:]
        return {".csv": file_bytes(header, changed)}
    return make


def zipped(content: bytes, method=zipfile.ZIP_DEFLATED) -> bytes:
    "`content` as the one member of a zip archive."
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("flights.csv", content)
    return buffer.getvalue()


def _corrupt_zip(content: bytes, position: str) -> bytes:
    "A zip archive with one byte of its member's compressed data flipped at `position`."
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        member = archive.infolist()[0]
    start = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra)
    # the last byte of a deflate stream may be padding that changes nothing: "end" is a few bytes before it
    index = start + {"start": 0, "middle": member.compress_size // 2, "end": member.compress_size - 8}[position]
    return content[:index] + bytes([content[index] ^ 0xFF]) + content[index + 1:]


def _truncated(content: bytes, position: str) -> bytes:
    "`content` cut short at `position`."
    return content[:{"start": 30, "middle": len(content) // 2, "end": len(content) - 4}[position]]


CONTRACT_FAULTS = {
    "nul_byte": ("a NUL byte", _line_fault(b"\x00")),
    "lone_carriage_return": ("a carriage return inside the line", _line_fault(b"\r")),
    "many_latin1_lines": ("more than 10 lines are not valid utf-8", lambda header, lines, position: {
        ".csv": file_bytes(header, [set_field(line, "tailnum", "N\xe9").encode("latin-1") for line in lines])}),
    "utf16_file": ("is UTF-16", lambda header, lines, position: {
        ".csv": file_bytes(header, [line.encode() for line in lines]).decode().encode("utf-16")}),
    "gzip_named_csv": ("is a gzip archive, not text", lambda header, lines, position: {
        ".csv": gzip.compress(file_bytes(header, [line.encode() for line in lines]))}),
    "stored_zip_named_csv": ("is a zip archive, not text", lambda header, lines, position: {
        ".csv": zipped(file_bytes(header, [line.encode() for line in lines]), zipfile.ZIP_STORED)}),
    "changed_header": ("not the expected header", lambda header, lines, position: {
        ".csv": file_bytes(header + ",alliance", [(line + ",x").encode() for line in lines])}),
    "empty_file": ("the file is empty", lambda header, lines, position: {".csv": b""}),
    "truncated_gzip": ("truncated or corrupt archive", lambda header, lines, position: {
        ".csv.gz": _truncated(gzip.compress(file_bytes(header, [line.encode() for line in lines])), position)}),
    "corrupt_zip": ("truncated or corrupt archive", lambda header, lines, position: {
        ".zip": _corrupt_zip(zipped(file_bytes(header, [line.encode() for line in lines])), position)}),
    "two_drops": ("2 drops for", lambda header, lines, position: {
        ".csv": file_bytes(header, [line.encode() for line in lines]),
        ".csv.gz": gzip.compress(file_bytes(header, [line.encode() for line in lines]))}),
}


POSITIONAL = ("nul_byte", "lone_carriage_return", "truncated_gzip", "corrupt_zip")  # the rest concern the whole file


# --- good drops in other forms: every line must arrive ---
GOOD_DROPS = {
    "plain": lambda content: {".csv": content},
    "crlf_and_bom": lambda content: {".csv": b"\xef\xbb\xbf" + content.replace(b"\n", b"\r\n")},
    "no_final_newline": lambda content: {".csv": content.rstrip(b"\n")},
    "gzip": lambda content: {".csv.gz": gzip.compress(content)},
    "zip": lambda content: {".zip": zipped(content)},
}


# --- the independent reader ---

def _typed(column: str, text: str | None):
    "A field's text typed as silver types it (None for a missing value)."
    if text is None or text.strip() in MISSING:
        return None
    text, kind = text.strip(), CONTRACTS["flights"].types[column]
    if kind == "INT":
        return int(text)
    if kind == "DOUBLE":
        return float(text)
    if kind == "TIMESTAMP":
        return datetime.fromisoformat(text).astimezone(timezone.utc)
    return text


def line_signature(line: bytes) -> tuple:
    "What a line must be found as: its typed fields, its text when malformed, its bytes when not UTF-8."
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return ("bytes", base64.b64encode(line).decode())
    if "\ufffd" in text:
        return ("bytes", base64.b64encode(line).decode())
    fields = next(csv.reader([text]))
    if len(fields) != len(COLUMNS):
        return ("line", text)
    try:
        return ("fields", tuple(_typed(column, value) for column, value in zip(COLUMNS, fields, strict=True)))
    except ValueError:  # a field that does not type: found by its text
        return ("text", tuple(None if value.strip() in MISSING else value.strip() for value in fields))


def _row_signature_from_silver(row: dict) -> tuple:
    values = []
    for column in COLUMNS:
        value = row[column]
        if isinstance(value, datetime):
            value = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        values.append(value)
    return ("fields", tuple(values))


def _row_signature_from_quarantine(row: dict) -> tuple:
    if row["raw_bytes"]:
        return ("bytes", row["raw_bytes"])
    try:
        record = json.loads(row["record"])
    except json.JSONDecodeError:
        return ("line", row["record"])
    texts = [record.get(column) for column in COLUMNS]
    try:
        return ("fields", tuple(_typed(column, value) for column, value in zip(COLUMNS, texts, strict=True)))
    except ValueError:
        return ("text", tuple(texts))


@dataclass
class Landed:
    "What became of one batch, read with delta-rs."
    silver: Counter
    quarantine: dict  # signature -> list of rules
    bronze_rows: int


def read_batch(warehouse, batch: str) -> Landed:
    "Silver, quarantine and bronze of `batch`, read from the Delta tables with delta-rs."
    def table(name, where):
        path = warehouse / name
        if not path.exists():
            return []
        rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
        return [row for row in rows if where(row)]
    silver = table("silver_flights", lambda row: row["_batch"] == batch)
    quarantine = table("quarantine", lambda row: row["batch"] == batch and row["source_table"] == "bronze_flights")
    bronze = table("bronze_flights", lambda row: row["_batch"] == batch)
    rules: dict = {}
    for row in quarantine:
        rules.setdefault(_row_signature_from_quarantine(row), []).append(row["rule"])
    return Landed(Counter(_row_signature_from_silver(row) for row in silver), rules, len(bronze))


def account(content: bytes, landed: Landed) -> dict:
    "Every non-blank line of `content` matched to exactly one silver or quarantine row: the rules per line signature."
    lines = [line.rstrip(b"\r") for line in content.removeprefix(b"\xef\xbb\xbf").split(b"\n")[1:]]
    expected = Counter(line_signature(line) for line in lines if line.strip())
    found = landed.silver + Counter({signature: len(rules) for signature, rules in landed.quarantine.items()})
    missing, extra = expected - found, found - expected
    assert not missing and not extra, f"lines not accounted for: {list(missing)[:3]}; rows from nowhere: {list(extra)[:3]}"
    return {signature: landed.quarantine.get(signature, []) for signature in expected}
