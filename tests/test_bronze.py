"""Bronze under stress: killed mid-write, run through Spark Connect, run by papermill.
(Its unit behaviour is tested in nbs/11_bronze.ipynb.)"""
import json
import os
import signal
import subprocess
import sys
import time

from conftest import ROOT, free_port, run_tool

from dbxml.bronze import ingest_month
from dbxml.config import load_target, with_overrides
from dbxml.params import task_values
from dbxml.sources import land_source_files
from dbxml.spark import connect_server, get_spark

JANUARY_FLIGHTS = 27_004

INGEST = """
import sys
from pathlib import Path
from dbxml.bronze import ingest_month
from dbxml.config import load_target, with_overrides
from dbxml.params import task_values
from dbxml.spark import get_spark
target = with_overrides(load_target("local", environ={}), home=Path(sys.argv[1]))
print(ingest_month(get_spark(target), target, "2013-01")["rows"])
"""

COUNT = """
import sys
from pathlib import Path
from dbxml.config import load_target, with_overrides
from dbxml.params import task_values
from dbxml.spark import get_spark
target = with_overrides(load_target("local", environ={}), home=Path(sys.argv[1]))
spark = get_spark(target)
print(spark.table("spark_catalog.local__flights.bronze_flights").where("_batch = '2013-01'").count()
      if spark.catalog.tableExists("spark_catalog.local__flights.bronze_flights") else 0)
"""


def python(code, home, **kwargs):
    return subprocess.Popen([sys.executable, "-c", code, str(home)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, **kwargs)


def test_a_process_killed_mid_write_leaves_bronze_readable_and_the_rerun_completes(tmp_path):
    home = tmp_path / "home"
    land_source_files(with_overrides(load_target("local", environ={}), home=home))
    table = home / "warehouse" / "local__flights.db" / "bronze_flights"
    writer = python(INGEST, home)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and writer.poll() is None and not list(table.glob("*.parquet")):
        time.sleep(0.02)  # kill as soon as data files exist: the commit comes after them
    assert writer.poll() is None, "the writer finished before it could be killed"
    # the JVM does the writing: kill it first, then its Python driver
    killed = subprocess.run(["pkill", "-9", "-f", f"derby.system.home={home}"], check=False)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert killed.returncode == 0, "no JVM of the writer was found to kill"
    after_kill = int(python(COUNT, home).communicate(timeout=300)[0].split()[-1])
    assert after_kill in (0, JANUARY_FLIGHTS)  # readable, and never a partial batch
    rerun = python(INGEST, home).communicate(timeout=300)[0]
    assert int(rerun.split()[-1]) == JANUARY_FLIGHTS


def test_a_month_lands_in_bronze_through_spark_connect(tmp_path):
    home = tmp_path / "home"
    local = with_overrides(load_target("local", environ={}), home=home)
    land_source_files(local)
    with connect_server(local, port=free_port()) as url:
        target = with_overrides(load_target("connect", environ={}), home=home, spark_remote=url)
        spark = get_spark(target)
        assert type(spark).__module__.startswith("pyspark.sql.connect")
        first, again = ingest_month(spark, target, "2013-01"), ingest_month(spark, target, "2013-01")
        spark.stop()
    assert (first["rows"], first["written"]) == (JANUARY_FLIGHTS, True)
    assert (again["rows"], again["written"]) == (JANUARY_FLIGHTS, False)


def test_papermill_runs_the_lakehouse_task_notebook_by_hand_with_a_month_parameter(local_env, tmp_path):
    "A pipeline notebook needs no runner: plain papermill, a month, the local target (its own classic Spark)."
    output = tmp_path / "lakehouse.ipynb"
    result = run_tool("papermill", str(ROOT / "nbs" / "pipelines" / "lakehouse.ipynb"), str(output),
                      "-p", "month", "2013-03", "--cwd", str(ROOT), env=local_env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    values = task_values(json.loads(output.read_text()))
    assert (values["bronze"], values["silver"] + values["quarantined"]) == (28834, 28834)
    assert (values["volume"], values["state"]) == ("ok", "written")  # the month_complete condition reads volume
