"""The lakehouse under stress: a rerun leaves every table identical, a process killed mid-write
leaves readable tables and a rerun that completes, and Spark Connect (a real local server, what Databricks
serverless speaks) writes into the target's home what classic Spark writes.
(Each stage's own behaviour, including bad input, is tested in its notebook.)"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, free_port
from support.lakehouse_job import digests

from dbxml.catalog import table_name
from dbxml.config import load_target, with_overrides
from dbxml.lakehouse import run_lakehouse
from dbxml.spark import connect_server, get_spark

pytestmark = pytest.mark.slow  # every test builds a real month on its own Spark

JOB = str(ROOT / "tests" / "support" / "lakehouse_job.py")
JANUARY = {"month": "2013-01", "bronze": 27_004, "silver": 27_004, "quarantined": 0, "features": 27_004,
           "mart_rows": 33, "volume": "ok", "state": "written", "warning": ""}


def lakehouse_job(home, months="2013-01", runs=1, stderr=subprocess.PIPE):
    "Start the lakehouse job in its own process (a job that is to be killed gets `stderr=DEVNULL`: nobody reads it)."
    return subprocess.Popen([sys.executable, JOB, str(home), months, str(runs)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=stderr, text=True)


def results(process, timeout=900):
    "The JSON results a lakehouse job printed."
    output, errors = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"the lakehouse job failed with status {process.returncode}: {(errors or '')[-3000:]}"
    return json.loads(output.splitlines()[-1])


@pytest.fixture(scope="module")
def january_twice(tmp_path_factory):
    "January run twice on a classic local lakehouse: the results of each run."
    return results(lakehouse_job(tmp_path_factory.mktemp("classic") / "home", runs=2))


def test_a_month_reconciles_in_every_table(january_twice):
    first, _ = january_twice
    assert first["counts"] == [JANUARY]
    assert first["digests"]["silver_weather"]["all"].startswith("26114:")  # one reading quarantined


def test_rerunning_a_month_leaves_every_table_identical(january_twice):
    first, second = january_twice
    assert second["counts"] == [{**counts, "state": "unchanged"} for counts in first["counts"]]
    changed = [table for table in first["digests"] if first["digests"][table] != second["digests"][table]]
    assert not changed, f"a rerun changed the contents of {changed}"


def test_a_month_through_spark_connect_writes_what_classic_spark_writes(tmp_path, january_twice):
    home = tmp_path / "home"
    with connect_server(with_overrides(load_target("local", environ={}), home=home), port=free_port()) as url:
        target = with_overrides(load_target("connect", environ={}), home=home, spark_remote=url)
        spark = get_spark(target)
        assert type(spark).__module__.startswith("pyspark.sql.connect")
        rows = run_lakehouse(spark, target, ["2013-01"], progress=None)
        over_connect = digests(spark, target)
        again = run_lakehouse(spark, target, ["2013-01"], progress=None)  # a rerun writes nothing, here too
        silver = table_name(target, "silver_flights").on(target)
        assert spark.sql(f"DESCRIBE DETAIL {silver}").first()["format"] == "delta"
        spark.stop()
    # the server wrote into the target's home (its warehouse and metastore), as a classic session would
    assert (home / "warehouse" / "local__flights.db" / "silver_flights" / "_delta_log").is_dir()
    assert (home / "metastore_db").is_dir()
    assert [{key: value for key, value in row.items() if not key.endswith("_s")} for row in rows] == [JANUARY]
    assert [(row["bronze"], row["state"]) for row in again] == [(JANUARY["bronze"], "unchanged")]
    classic = january_twice[0]["digests"]
    differ = [table for table in classic if classic[table]["portable"] != over_connect[table]["portable"]]
    assert not differ, f"Spark Connect and classic Spark wrote different contents in {differ}"


def kill_when_written(home, table):
    "Start January's lakehouse job on `home` and kill it (its JVM first) as soon as `table` has data files."
    written = home / "warehouse" / "local__flights.db" / table
    before = set(written.glob("*.parquet"))  # a rerun's table may hold the files of an earlier, uncommitted write
    writer = lakehouse_job(home, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and writer.poll() is None and not set(written.glob("*.parquet")) - before:
        time.sleep(0.02)  # kill as soon as the table's data files exist: its commit comes after them
    assert writer.poll() is None, f"the job finished before it could be killed while writing {table}"
    killed = subprocess.run(["pkill", "-9", "-f", f"derby.system.home={home}"], check=False)  # the JVM first
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert killed.returncode == 0, "no JVM of the job was found to kill"
    gone = time.monotonic() + 60  # the next run comes after the crashed JVM is gone (it holds the Derby metastore)
    while time.monotonic() < gone and subprocess.run(["pgrep", "-f", f"derby.system.home={home}"],
                                                      capture_output=True).returncode == 0:
        time.sleep(0.2)


def test_a_process_killed_while_writing_a_table_leaves_readable_tables_and_the_rerun_completes(tmp_path, january_twice):
    """Killed while writing bronze, then its rerun killed while writing silver (each after the table's data files
    and before its commit): the third run reads every table the killed runs left and finishes the month exactly as
    an uninterrupted run does."""
    home = tmp_path / "home"
    kill_when_written(home, "bronze_flights")
    kill_when_written(home, "silver_flights")  # this run read the bronze its killed predecessor left
    rerun = results(lakehouse_job(home))[0]
    assert rerun["counts"] == [JANUARY]
    classic = january_twice[0]["digests"]
    differ = [table for table in classic if classic[table]["portable"] != rerun["digests"][table]["portable"]]
    assert not differ, f"after the kills, the rerun left different contents in {differ}"
