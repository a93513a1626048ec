"""Benchmark: what starting dbxml costs, against plain pyspark in the same run.

Run from the repository root:  .venv/bin/python tests/benchmarks/bench_startup.py

Every measurement runs in a fresh Python process (a fresh JVM where Spark starts), timed
from before the first import to the answer of a first query (for dbxml, one that opens the metastore). It prints seconds and the
ratio to the baseline measured in the same run:

- imports: `import dbxml`, `dbxml.config`, `dbxml.spark`, `dbxml.cli` vs `import pyspark.sql`;
- Spark start: dbxml's local Delta session with a persistent Hive metastore, cold (an
  empty jar cache, so Delta's jars come from Maven Central), warm, and warm with no
  network at all (`unshare -n`, when this user may), vs a plain classic local session.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

IMPORT = """
import time, json, importlib
start = time.perf_counter()
importlib.import_module({module!r})
print(json.dumps(time.perf_counter() - start))
"""

PLAIN_SPARK = """
import time, json
start = time.perf_counter()
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false").getOrCreate()
spark.sql("SELECT 1").collect()
print(json.dumps(time.perf_counter() - start))
"""

DBXML_SPARK = """
import time, json
start = time.perf_counter()
from dbxml.config import scratch_target
from dbxml.spark import get_spark
spark = get_spark(scratch_target())
spark.sql("SHOW DATABASES").collect()  # also opens the Hive metastore
print(json.dumps(time.perf_counter() - start))
"""


def timed(code, env=None, prefix=()):
    "Seconds reported by `code` run in a fresh interpreter (the last line it prints)."
    # the plain baseline's workers and spark-submit run this interpreter too, as dbxml's do (ADR 0014)
    env = (env or dict(os.environ)) | {"PYSPARK_PYTHON": sys.executable}
    result = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(label, seconds, baseline):
    print(f"{label:<48} {seconds:7.2f} s   {seconds / baseline:5.2f}x")
    return seconds


def main():
    import os

    print("imports (fresh interpreter each)")
    baseline = min(timed(IMPORT.format(module="pyspark.sql")) for _ in range(3))
    report("import pyspark.sql (baseline)", baseline, baseline)
    imports = {module: report(f"import {module}", min(timed(IMPORT.format(module=module)) for _ in range(3)), baseline)
               for module in ["dbxml", "dbxml.config", "dbxml.spark", "dbxml.catalog", "dbxml.cli"]}

    print("\nSpark start to first answer (fresh process and JVM each)")
    baseline = timed(PLAIN_SPARK)
    report("plain local pyspark session (baseline)", baseline, baseline)
    cache = Path(tempfile.mkdtemp(prefix="dbxml-jars-"))
    env = {**os.environ, "DBXML_JARS_CACHE": str(cache)}
    try:
        report("dbxml local Delta + metastore, cold jar cache", timed(DBXML_SPARK, env), baseline)
        warm = report("dbxml local Delta + metastore, warm (best of 2)", min(timed(DBXML_SPARK, env) for _ in range(2)),
                      baseline)
        if shutil.which("unshare") and shutil.which("ip") and subprocess.run(["unshare", "-n", "true"]).returncode == 0:
            offline = ("unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"')  # loopback only
            report("dbxml warm, no network (unshare -n)", timed(DBXML_SPARK, env, prefix=offline), baseline)
        else:
            print("(no network namespace for this user: the offline start was not measured)")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    # for tests/benchmarks/report.py
    print("RESULT " + json.dumps({"import_cli_s": imports["dbxml.cli"], "plain_start_s": baseline, "warm_start_s": warm,
                                  "warm_start_ratio": warm / baseline}))


if __name__ == "__main__":
    main()
