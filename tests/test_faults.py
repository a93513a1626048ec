"""Every byte accounted for: generated faults, each at the start, middle and end of a month's file.

Record faults must quarantine exactly the faulty line under its rule and put every other line in silver,
unchanged; contract faults must refuse the month whole, before anything is ingested. What became of each
line is read back with delta-rs (tests/support/faults.py), not with the Spark that wrote it."""
import time
import zipfile

import pytest
from conftest import run_tool
from support.faults import (
    CONTRACT_FAULTS,
    GOOD_DROPS,
    POSITIONAL,
    POSITIONS,
    RECORD_FAULTS,
    account,
    at,
    file_bytes,
    in_year,
    line_signature,
    read_batch,
    with_record_fault,
    zipped,
)

from dbxml.bronze import ingest_month
from dbxml.config import load_target, with_overrides
from dbxml.contract import ContractError
from dbxml.lakehouse import run_lakehouse
from dbxml.silver import refine_month
from dbxml.sources import flights_file, land_source_files
from dbxml.spark import get_spark

STRIDE = 700  # every 700th February flight: about 35 lines a case
CONTROL_YEAR, FIRST_RECORD_YEAR, FIRST_CONTRACT_YEAR = 2100, 2101, 2300


def drop(target, year, parts):
    "Land the drops `parts` ({suffix: bytes}) of February `year`; returns the batch."
    folder = flights_file(target, "2013-02").parent
    for suffix, content in parts.items():
        (folder / f"{year}-02{suffix}").write_bytes(content)
    return f"{year}-02"


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory):
    """A local lakehouse that ran a clean month through every stage, then each record-fault case and good drop
    through bronze and silver as a month of its own.

    Its Spark session runs in this process, so it is stopped at the end: pyspark refuses to start a Spark Connect
    session in a process that holds a classic one, and later test modules do that."""
    home = tmp_path_factory.mktemp("faults") / "home"
    target = with_overrides(load_target("local", environ={}), home=home)
    land_source_files(target)
    february = flights_file(target, "2013-02").read_text().splitlines()
    header, sample = february[0], february[1::STRIDE]
    spark = get_spark(target)
    # the sample as it is, first: the lines it puts in silver are the clean base for every case
    control = [in_year(line, CONTROL_YEAR) for line in sample]
    drop(target, CONTROL_YEAR, {".csv": file_bytes(header, [line.encode() for line in control])})
    run_lakehouse(spark, target, [f"{CONTROL_YEAR}-02"], progress=None)
    rules = account(file_bytes(header, [line.encode() for line in control]),
                    read_batch(home / "warehouse" / "local__flights.db", f"{CONTROL_YEAR}-02"))
    base = [line for line, moved in zip(sample, control, strict=True) if rules[line_signature(moved.encode())] == []]
    cases, year = [], FIRST_RECORD_YEAR
    for fault in RECORD_FAULTS:
        content, faulty = with_record_fault(header, [in_year(line, year) for line in base], fault)
        cases.append({"fault": fault, "batch": drop(target, year, {".csv": content}), "content": content,
                      "faulty": faulty})
        year += 1
    for form, make in GOOD_DROPS.items():
        content = file_bytes(header, [in_year(line, year).encode() for line in base])
        parts = make(content)
        cases.append({"fault": f"good drop: {form}", "batch": drop(target, year, parts),
                      "content": content if form != "crlf_and_bom" else parts[".csv"], "faulty": {}})
        year += 1
    started = time.perf_counter()
    for case in cases:  # bronze and silver, where every line is accounted for (gold reads only silver's rows)
        ingest_month(spark, target, case["batch"])
        refine_month(spark, target, case["batch"])
    seconds = time.perf_counter() - started
    yield {"target": target, "spark": spark, "header": header, "base": base, "cases": cases, "seconds": seconds,
           "warehouse": home / "warehouse" / "local__flights.db"}
    spark.stop()


@pytest.mark.slow
def test_the_base_is_clean_and_big_enough(lakehouse):
    assert len(lakehouse["base"]) >= 20, "too few clean lines to put faults at the start, middle and end"


@pytest.mark.slow
def test_every_record_fault_quarantines_its_line_under_its_rule_and_leaves_every_other_line_in_silver(lakehouse):
    table, wrong = [], []
    for case in lakehouse["cases"]:
        rules = account(case["content"], read_batch(lakehouse["warehouse"], case["batch"]))
        found = {position: rules.pop(line_signature(line)) for position, line in case["faulty"].items()}
        others = sorted({rule for rule_list in rules.values() for rule in rule_list})  # the lines left alone
        if not case["faulty"]:
            table.append((case["fault"], "whole", "nothing quarantined" if not others else f"quarantined {others}"))
        expected = RECORD_FAULTS[case["fault"]][0] if case["faulty"] else None
        for position, quarantined in found.items():
            verdict = ("one copy in silver, one quarantined: " if case["fault"] == "duplicate" else "quarantined: ") \
                + ", ".join(quarantined)
            table.append((case["fault"], position, verdict))
            if quarantined != [expected]:
                wrong.append((case["fault"], position, verdict))
        if others:
            wrong.append((case["fault"], "the other lines", others))
    print(f"\n{len(lakehouse['cases'])} months in {lakehouse['seconds']:.0f} s")
    for fault, position, verdict in table:
        print(f"| {fault} | {position} | {verdict}; every {'other ' if position != 'whole' else ''}line in silver, "
              "unchanged |")
    assert not wrong, wrong


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(CONTRACT_FAULTS))
def test_a_contract_fault_refuses_the_month_whole_before_anything_is_ingested(lakehouse, fault):
    target, spark = lakehouse["target"], lakehouse["spark"]
    words, make = CONTRACT_FAULTS[fault]
    positions = POSITIONS if fault in POSITIONAL else ("whole",)
    year = FIRST_CONTRACT_YEAR + 10 * list(CONTRACT_FAULTS).index(fault)
    for offset, position in enumerate(positions):
        lines = [in_year(line, year + offset) for line in lakehouse["base"]]
        parts = make(lakehouse["header"], lines, position if position != "whole" else "middle")
        batch = drop(target, year + offset, parts)
        with pytest.raises(ContractError) as refused:
            run_lakehouse(spark, target, [batch], progress=None)
        message = str(refused.value)
        problem = message.splitlines()[0]
        assert words in problem and f"{batch}." in problem, message
        assert message.splitlines()[1:] == ["Nothing was ingested: fix the file(s) above, then run again."]
        landed = read_batch(lakehouse["warehouse"], batch)
        assert (landed.bronze_rows, sum(landed.silver.values()), len(landed.quarantine)) == (0, 0, 0)
        if fault in POSITIONAL and fault in ("nul_byte", "lone_carriage_return"):
            assert f"line {at(position, len(lines)) + 2}," in problem, problem  # the line it is on
        print(f"| {fault} | {position} | refused: {problem.split(': ', 1)[1]} |")
        for suffix in parts:  # leave the landing zone as other cases expect it
            flights_file(target, "2013-02").with_name(f"{batch}{suffix}").unlink()


def test_the_command_line_refuses_a_bad_file_in_one_line_before_spark_starts(tmp_path, local_env):
    home = tmp_path / "home"
    land_source_files(with_overrides(load_target("local", environ={}), home=home))
    february = home / "raw" / "flights" / "2013-02.csv"
    february.write_bytes(zipped(february.read_bytes(), zipfile.ZIP_STORED))  # an archive under a .csv name
    no_java = {**local_env, "JAVA_HOME": str(tmp_path / "no-java")}  # had Spark been started, it would fail on this
    for how in ([], ["--in-process"]):  # the monthly job checks every month of its range before its first task
        done = run_tool("dbxml", "run", *how, "-p", "month=2013-01..2013-03", env=no_java, timeout=300)
        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines() == [
            f"dbxml: {february}: line 1, byte 0: is a zip archive, not text. Unpack it, or land it as .zip",
            "Nothing was ingested: fix the file(s) above, then run again."]
        assert not (home / "runs").exists() and not (home / "warehouse").exists()
        assert not (home / "metastore_db").exists()
