"""Importing dbxml must be cheap and start nothing: docs builds, the CLI and Databricks
notebooks all import it long before (or without) wanting Spark."""
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import dbxml

SUPPORT = Path(__file__).parent / "support"

PROBE = """
import importlib, json, os, sys, time
start = time.perf_counter()
for name in sys.argv[1:]:
    importlib.import_module(name)
elapsed = time.perf_counter() - start
me = str(os.getpid())
children = [pid for pid in os.listdir("/proc") if pid.isdigit()
            and open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1] == me]
gateway = sys.modules["pyspark"].SparkContext._gateway if "pyspark.core.context" in sys.modules else None
print(json.dumps({"seconds": elapsed, "children": children, "gateway": gateway is not None,
                  "pyspark_loaded": "pyspark" in sys.modules}))
"""


def import_probe(*modules):
    "Import `modules` in a fresh interpreter; report time, child processes and Spark's gateway."
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    result = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, check=True,
                            env=env)
    return json.loads(result.stdout)


def test_importing_every_dbxml_module_starts_no_jvm():
    modules = [f"dbxml.{info.name}" for info in pkgutil.iter_modules(dbxml.__path__) if not info.name.startswith("_")]
    assert {"dbxml.config", "dbxml.spark", "dbxml.catalog", "dbxml.cli"} <= set(modules)
    probe = import_probe(*modules)
    assert probe["children"] == [] and not probe["gateway"]
    print(f"import of {len(modules)} modules: {probe['seconds']:.3f} s")


def test_the_probe_sees_a_started_jvm():
    "The probe above would notice a JVM: starting a real gateway shows up as a child process."
    probe = import_probe("dbxml.spark", "tests_start_gateway")
    assert probe["children"] and probe["gateway"]
