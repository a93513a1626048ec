# %% [markdown]
# # Spark
# > One `get_spark()` for every place dbxml runs: a Databricks cluster, a Spark Connect
# > server, or Delta Lake on this machine.
#
# Pipeline code never builds a session itself; it asks `get_spark(target)`:
#
# - **on Databricks** it gets the session the runtime already made;
# - **`spark = "connect"`** gives a Spark Connect client for the target's `spark_remote`,
#   the protocol Databricks serverless and shared clusters speak;
# - **`spark = "local"`** gives a classic local session with Delta Lake whose tables
#   persist across processes: the warehouse, the Hive metastore (Derby) and Derby's log
#   all live under the target's `home`, so no `metastore_db/` or `spark-warehouse/`
#   appears wherever the process happened to start.
#
# Importing this module starts nothing: it imports pyspark's Python side (about 0.1 s)
# but launches no JVM until `get_spark` is called, so a docs build or `dbxml --help`
# stays cheap and safe.

# %%
#| default_exp spark

# %%
#| export
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

from pyspark.sql import SparkSession

from dbxml.config import DbxmlError, Target, load_target, on_databricks, scratch_target

# %%
#| hide
import tempfile

from fastcore.test import test_eq, test_fail
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

# %% [markdown]
# ## Java, checked before the JVM is
#
# Local Spark 4 needs Java 17 or newer. Without it pyspark fails with a Py4J gateway
# trace that does not say "install Java"; we look first and say it in one line.

# %%
#| export
MIN_JAVA = 17

def find_java(environ: Mapping[str, str] | None = None,  # environment (default: `os.environ`)
             ) -> Path | None:
    "The `java` Spark will launch: `$JAVA_HOME/bin/java` if set, else the first on `PATH`."
    environ = os.environ if environ is None else environ
    if environ.get("JAVA_HOME"):
        candidate = Path(environ["JAVA_HOME"]) / "bin" / "java"
        return candidate if candidate.is_file() else None
    found = shutil.which("java", path=environ.get("PATH", ""))
    return Path(found) if found else None


# %%
#| export
def java_major_version(version_output: str,  # what `java -version` printed
                      ) -> int | None:
    "The major version in `java -version` output: 17 for `\"17.0.15\"`, 8 for `\"1.8.0_292\"`."
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


# %%
test_eq(java_major_version('openjdk version "17.0.15" 2025-04-15'), 17)
test_eq(java_major_version('java version "1.8.0_292"'), 8)
test_eq(java_major_version('openjdk version "21" 2023-09-19'), 21)
test_eq(java_major_version("bash: java: command not found"), None)


# %%
#| export
def check_java(environ: Mapping[str, str] | None = None,  # environment (default: `os.environ`)
              ) -> int:
    "The major version of the Java local Spark will use; a `DbxmlError` if it is missing or older than 17."
    java = find_java(environ)
    if java is None:
        raise DbxmlError(f"Java {MIN_JAVA} is required for local Spark, but no java was found "
                         "(checked $JAVA_HOME/bin/java, then PATH). Install OpenJDK 17, for example "
                         "`apt-get install openjdk-17-jdk-headless` or `brew install openjdk@17`.")
    result = subprocess.run([str(java), "-version"], capture_output=True, text=True)
    version = java_major_version(result.stderr + result.stdout)
    if version is None or version < MIN_JAVA:
        raise DbxmlError(f"{java} is Java {version or 'of unknown version'}, but local Spark needs "
                         f"Java {MIN_JAVA} or newer. Point JAVA_HOME at a Java 17 installation.")
    return version


# %% [markdown]
# This machine has a suitable Java; a `JAVA_HOME` without one, or an empty `PATH`, gets
# the one-line explanation:

# %%
assert check_java() >= 17
test_fail(lambda: check_java({"JAVA_HOME": "/nonexistent"}), contains="no java was found")
test_fail(lambda: check_java({"PATH": ""}), contains="Install OpenJDK 17")

# %% [markdown]
# A Java 8 on the way (here a stand-in `java` that answers like one) is named, with its version:

# %%
old_java_home = Path(tempfile.mkdtemp())
(old_java_home / "bin").mkdir()
(old_java_home / "bin" / "java").write_text("#!/bin/sh\necho 'java version \"1.8.0_292\"' >&2\n")
(old_java_home / "bin" / "java").chmod(0o755)
test_fail(lambda: check_java({"JAVA_HOME": str(old_java_home)}), contains="is Java 8, but local Spark needs Java 17")


# %% [markdown]
# ## The Python workers: this environment's interpreter
#
# Spark runs Python code (UDFs, `mlflow.pyfunc.spark_udf`, pandas UDFs) in worker
# processes it starts itself, with the interpreter named by `PYSPARK_PYTHON`, and when
# that is unset, with whatever `python3` comes first on `PATH`. On a fresh machine that
# is the system's Python, which has neither pandas nor pyarrow nor MLflow: scoring then
# fails deep inside a worker with `No module named 'pandas'`. The same goes for the
# Spark Connect server's workers.
#
# So every Spark dbxml starts on this machine is told, in its environment, to run its
# workers with the interpreter that started it (`sys.executable`, the one that has
# dbxml's packages), and that its home is the installed pyspark (a `SPARK_HOME` left by
# another Spark installation would make pyspark launch that one's JVM). A
# `PYSPARK_PYTHON` or `SPARK_HOME` inherited from the machine is overridden: a local
# lakehouse must not depend on what else is installed. On Databricks none of this runs:
# the runtime's own settings stay untouched.

# %%
#| export
def local_spark_variables() -> dict[str, str]:
    "The environment variables every local Spark (classic or Connect server) gets: its workers' Python and its home."
    import pyspark

    return {"PYSPARK_PYTHON": sys.executable, "SPARK_HOME": str(Path(pyspark.__file__).parent)}

# pyspark marks a process that made a Connect client by these; a process that starts local Spark must not inherit them
CONNECT_CLIENT_VARIABLES = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE")

def _classic_environment() -> dict[str, str]:
    "The environment of a child process that starts local Spark: this one's, less Connect's marks, plus the above."
    return {key: value for key, value in os.environ.items() if key not in CONNECT_CLIENT_VARIABLES} | \
        local_spark_variables()


# %%
test_eq(local_spark_variables()["PYSPARK_PYTHON"], sys.executable)
os.environ["SPARK_REMOTE"] = "sc://elsewhere:15002"  # inherited from a Connect client, say
assert "SPARK_REMOTE" not in _classic_environment() and _classic_environment()["PYSPARK_PYTHON"] == sys.executable
del os.environ["SPARK_REMOTE"]
assert (Path(local_spark_variables()["SPARK_HOME"]) / "bin" / "spark-submit").is_file()

# %% [markdown]
# `dbxml doctor` checks, before any Spark starts, that this interpreter can import what
# the workers will need:

# %%
#| export
WORKER_MODULES = ("pandas", "pyarrow", "mlflow")  # what Arrow transfers and scoring UDFs import in a worker

def check_worker_python(modules: tuple[str, ...] = WORKER_MODULES) -> str:
    "The interpreter local Spark's workers run, once it imports `modules`; else a `DbxmlError`."
    python = local_spark_variables()["PYSPARK_PYTHON"]
    imports = "; ".join(f"import {module}" for module in modules)
    done = subprocess.run([python, "-c", imports], capture_output=True, text=True)
    if done.returncode != 0:
        missing = (done.stderr.strip().splitlines() or ["it did not start"])[-1]
        raise DbxmlError(f"Spark's Python workers will run {python}, which cannot import what they need "
                         f"({missing}). Reinstall the environment: rm -rf .venv && make install.")
    return f"{python} (imports {', '.join(modules)})"


# %%
assert check_worker_python().startswith(sys.executable)
test_fail(lambda: check_worker_python(("no_such_module_here",)), contains="No module named 'no_such_module_here'")


# %% [markdown]
# ## Delta's jars, resolved once, quietly
#
# The `delta-spark` wheel holds Python only; its jars come from Maven Central. The first
# start lets `delta.configure_spark_with_delta_pip` name the right artifact for this
# pyspark, and Spark's Ivy resolves it into dbxml's cache. Ivy is chatty (a few hundred
# lines on a first run, one per repository it tries for each artifact), so that first
# start runs in a child process whose output goes to a log file in the cache; the
# terminal gets one line. The child records the resolved jar files in a manifest, and
# every later start hands Spark those files directly and never asks the network, so a
# laptop on a train still gets its lakehouse. `DBXML_JARS_CACHE` moves the cache
# (default: `~/.cache/dbxml/jars`).

# %%
#| export
def jars_cache(environ: Mapping[str, str] | None = None) -> Path:
    "The folder that holds Ivy's cache and the manifests of resolved jars."
    environ = os.environ if environ is None else environ
    default = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dbxml" / "jars"
    return Path(environ.get("DBXML_JARS_CACHE") or default).expanduser()

def jars_manifest(cache: Path) -> Path:
    "The manifest listing the resolved jars for the installed delta-spark and pyspark versions."
    from importlib.metadata import version
    return cache / f"delta-{version('delta-spark')}-spark-{version('pyspark')}.jars"

def cached_jars(cache: Path) -> list[str] | None:
    "The resolved jar files recorded in the manifest, or None when any is missing."
    manifest = jars_manifest(cache)
    if not manifest.is_file():
        return None
    jars = manifest.read_text().split()
    return jars if jars and all(Path(jar).is_file() for jar in jars) else None


# %%
empty_cache = Path(tempfile.mkdtemp())
assert jars_manifest(empty_cache).name.startswith("delta-4.4.0-spark-4.2.0")
test_eq(cached_jars(empty_cache), None)
jars_manifest(empty_cache).write_text("/nonexistent/delta.jar")
test_eq(cached_jars(empty_cache), None)  # a manifest whose files are gone triggers a new resolution
test_eq(jars_cache({"DBXML_JARS_CACHE": "/x/jars"}), Path("/x/jars"))


# %% [markdown]
# When resolution fails, the log holds hundreds of lines; the user needs the one that
# says why. Ivy names an artifact it could not find as an "unresolved dependency"; a
# network failure ends in a Java exception.

# %%
#| export
def resolution_failure(log: str) -> str:
    "The line of an Ivy resolution log that says why it failed (the last one that names a cause)."
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for marker in ("unresolved dependency", "Exception", "Error"):
        found = [line for line in lines if marker in line]
        if found:
            return found[-1].removeprefix("::").strip()
    return lines[-1] if lines else "the resolver printed nothing"

def resolution_log_tail(log: str, count: int = 8) -> str:
    "The resolver's last `count` lines before any stack trace, blank lines and rules of colons left out."
    before = re.split(r"^(?:Exception in thread|Traceback \(most recent call last\))", log, maxsplit=1, flags=re.M)[0]
    kept = [line.rstrip() for line in before.splitlines() if line.strip().strip(":").strip()]
    return "\n".join(kept[-count:])


# %%
ivy_log = """:: resolving dependencies :: org.apache.spark#spark-submit-parent;1.0
\tconfs: [default]
:: problems summary ::
:::: WARNINGS
\t\tHost repo1.maven.org not found. url=https://repo1.maven.org/maven2/io/delta/delta-spark_2.13/4.4.0/x.pom
\t\t::::::::::::::::::::::::::::::::::::::::::::::
\t\t::          UNRESOLVED DEPENDENCIES         ::
\t\t:: io.delta#delta-spark_2.13;4.4.0: not found
Exception in thread "main" java.lang.RuntimeException: [unresolved dependency: io.delta#delta-spark_2.13;4.4.0: not found]
"""
test_eq(resolution_failure(ivy_log),
        'Exception in thread "main" java.lang.RuntimeException: [unresolved dependency: io.delta#delta-spark_2.13;4.4.0: not found]')
test_eq(resolution_failure("starting\njava.net.UnknownHostException: repo1.maven.org\n\tat x.y(z)\n"),
        "java.net.UnknownHostException: repo1.maven.org")
test_eq(resolution_failure(""), "the resolver printed nothing")
test_eq([line.strip() for line in resolution_log_tail(ivy_log, 3).splitlines()],
        ["Host repo1.maven.org not found. url=https://repo1.maven.org/maven2/io/delta/delta-spark_2.13/4.4.0/x.pom",
         "::          UNRESOLVED DEPENDENCIES         ::", ":: io.delta#delta-spark_2.13;4.4.0: not found"])


# %% [markdown]
# `ensure_delta_jars` is the one way to the jars: the manifest when it is there, else
# one resolution. A lock on the cache makes a second process that starts meanwhile (two
# notebooks tested in parallel) wait for the first one's result instead of running Ivy
# over the same cache at the same time.

# %%
#| export
def ensure_delta_jars(cache: Path | None = None,  # jar cache (default: `jars_cache()`)
                      announce=print,  # called with the one line a first resolution prints
                     ) -> list[str]:
    "The resolved Delta jar files, resolving them once (in a quiet child process) if not cached."
    import fcntl

    cache = cache or jars_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jars = cached_jars(cache)
        if jars is None:
            jars = _resolve_in_child(cache, announce)
    return jars

def _resolve_in_child(cache: Path, announce) -> list[str]:
    "Run the first start in a child process, its output kept in `cache/resolve.log`."
    log = cache / "resolve.log"
    announce(f"dbxml: fetching Delta Lake's jars from Maven Central into {cache} "
             f"(once; about a minute; log: {log})")
    check_java()
    code = "import sys, pathlib, dbxml.spark as s; s._resolve_here(pathlib.Path(sys.argv[1]))"
    with open(log, "w") as output:
        done = subprocess.run([sys.executable, "-c", code, str(cache)], stdout=output, stderr=subprocess.STDOUT,
                              env=_classic_environment())
    jars = cached_jars(cache)
    if done.returncode != 0 or jars is None:
        text = log.read_text(errors="replace")
        raise DbxmlError(f"Delta Lake's jars could not be fetched from Maven Central: {resolution_failure(text)}\n"
                         f"Check the network, or name a mirror's Ivy settings in DBXML_IVY_SETTINGS, then run "
                         f"again. The resolver's last lines (all of them in {log}):\n{resolution_log_tail(text)}")
    return jars

def _resolve_here(cache: Path) -> None:
    "The first start itself: let delta-spark name its artifact, Ivy fetch it, and record the jar files."
    from delta import configure_spark_with_delta_pip

    scratch = scratch_target()
    write_log_config(scratch.home)
    conf = local_spark_conf(scratch) | {"spark.jars.ivy": str(cache)}
    if os.environ.get("DBXML_IVY_SETTINGS"):  # a company mirror instead of Maven Central
        conf["spark.jars.ivySettings"] = os.environ["DBXML_IVY_SETTINGS"]
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = configure_spark_with_delta_pip(builder).getOrCreate()
    resolved = [jar.removeprefix("file://") for jar in spark.conf.get("spark.jars").split(",") if jar]
    jars_manifest(cache).write_text("\n".join(resolved) + "\n")
    spark.stop()


# %% [markdown]
# Behind a company proxy, `DBXML_IVY_SETTINGS` names an Ivy settings file that points
# at the company's mirror. Here one points at an empty folder, as a machine without
# Maven Central would be: the first start fails with one message that names the cause
# and shows the log's last lines, and leaves no manifest behind.

# %%
nowhere = Path(tempfile.mkdtemp())
(nowhere / "ivysettings.xml").write_text(
    f'<ivysettings><settings defaultResolver="empty"/><resolvers><filesystem name="empty">'
    f'<artifact pattern="{nowhere}/[organisation]/[module]/[revision]/[artifact].[ext]"/>'
    f'</filesystem></resolvers></ivysettings>')
os.environ["DBXML_IVY_SETTINGS"] = str(nowhere / "ivysettings.xml")
announced = []
try:
    test_fail(lambda: ensure_delta_jars(nowhere / "cache", announce=announced.append),
              contains="could not be fetched from Maven Central: Exception in thread \"main\" "
                       "java.lang.RuntimeException: [unresolved dependency: io.delta#delta-spark_")
finally:
    del os.environ["DBXML_IVY_SETTINGS"]
test_eq(len(announced), 1)
assert "once" in announced[0] and str(nowhere / "cache" / "resolve.log") in announced[0]
test_eq(cached_jars(nowhere / "cache"), None)

# %% [markdown]
# ## Quiet logs
#
# Spark's default logging prints a dozen warnings on every local start that are about
# the local setup itself (a loopback hostname, no native Hadoop, Delta tables kept in
# Hive's metastore in Spark's own format). dbxml's log configuration shows errors only,
# and silences two Hive metastore loggers whose errors Spark catches and handles.

# %%
#| export
LOG4J2_PROPERTIES = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
# Hive's metastore logs errors that Spark then handles: an existing database on
# CREATE ... IF NOT EXISTS, a Delta schema it retries in Spark's own format.
logger.hive_alter.name = org.apache.hadoop.hive.metastore.HiveAlterHandler
logger.hive_alter.level = off
logger.hive_handler.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler
logger.hive_handler.level = off
# A failing write (a Delta constraint refusing a row, say) reaches the caller as one
# exception; the task, the writer, the executor and the scheduler would each log its
# whole stack trace again.
logger.abort_task.name = org.apache.spark.util.Utils
logger.abort_task.level = off
logger.delta_writer.name = org.apache.spark.sql.delta.files.DeltaFileFormatWriter
logger.delta_writer.level = off
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = off
logger.task_set.name = org.apache.spark.scheduler.TaskSetManager
logger.task_set.level = off
# A profile (dbxml.profile) counts the files Spark reads: this logger is off until a
# profile turns it on, and writes to a file of its own, never to the console.
appender.scans.type = File
appender.scans.name = scans
appender.scans.fileName = ${sys:dbxml.home}/logs/file-scans.log
appender.scans.createOnDemand = true
appender.scans.layout.type = PatternLayout
appender.scans.layout.pattern = %m%n
logger.scans.name = org.apache.spark.sql.execution.datasources.FileScanRDD
logger.scans.level = off
logger.scans.additivity = false
logger.scans.appenderRef.scans.ref = scans
"""


# %%
#| export
def write_log_config(home: Path) -> Path:
    "Write dbxml's log4j2 configuration into `home`; returns its path."
    path = Path(home) / "log4j2.properties"
    path.write_text(LOG4J2_PROPERTIES)
    return path


# %% [markdown]
# ## The local session's settings
#
# Every setting is here, as data, so it can be read and tested without starting a JVM.
# Shuffle partitions are few because one machine's data is small (Spark's default of
# 200 makes every small join slow); the UI is off because test processes would fight
# over its port; time is UTC so results do not depend on the laptop.

# %%
#| export
def local_spark_conf(target: Target,  # a local target (its `home` holds everything)
                     jars: list[str] | None = None,  # Delta's resolved jar files (see `ensure_delta_jars`)
                    ) -> dict[str, str]:
    "The Spark settings of a local Delta session whose tables and metastore live under `target.home`."
    home = Path(target.home)
    conf = {
        "spark.master": "local[*]",
        "spark.app.name": f"dbxml-{target.name}",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(Path(target.storage_root).resolve()),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": (f"-Dderby.system.home={home} -Ddbxml.home={home} "
                                          f"-Dlog4j2.configurationFile={(home / 'log4j2.properties').as_uri()}"),
        "spark.sql.shuffle.partitions": "4",
        # Delta rebuilds a table's state from its log with this many tasks (default 50):
        # on two cores, 50 tiny tasks made every small MERGE or count 3-4 times slower.
        "spark.databricks.delta.snapshotPartitions": "2",
        # Arrow moves rows to pandas (training, scoring UDFs) in columns, as on Databricks.
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # The driver's heap (in local mode also the executor's). A JVM keeps what its heap grew to: the year's run
        # peaked at 6.14 GiB with 4g, at 5.25 GiB with 2g (the JVM 2.43 GiB of it) in the same time
        # (tests/benchmarks/bench_year.py). For larger local data, more: DBXML_DRIVER_MEMORY=8g.
        "spark.driver.memory": os.environ.get("DBXML_DRIVER_MEMORY", "2g"),
    }
    if jars:
        conf["spark.jars"] = ",".join(jars)
    return conf


# %%
scratch = scratch_target()
conf = local_spark_conf(scratch, jars=["/cache/a.jar", "/cache/b.jar"])
assert conf["spark.sql.warehouse.dir"].startswith(str(scratch.home))
assert str(scratch.home) in conf["spark.hadoop.javax.jdo.option.ConnectionURL"]
test_eq(conf["spark.jars"], "/cache/a.jar,/cache/b.jar")
assert "spark.jars" not in local_spark_conf(scratch)


# %% [markdown]
# ## Getting the session

# %%
#| export
def start_local_spark(target: Target,  # a local target
                      cache: Path | None = None,  # jar cache (default: `jars_cache()`)
                     ) -> SparkSession:
    "A new classic local Delta session for `target`, its workers on this interpreter; the first start fetches Delta's jars."
    check_java()
    if os.environ.get("SPARK_CONNECT_MODE_ENABLED") or os.environ.get("SPARK_REMOTE"):
        raise DbxmlError("this process is in Spark Connect mode (SPARK_CONNECT_MODE_ENABLED or SPARK_REMOTE is "
                         "set, perhaps inherited), so a classic local session cannot start in it. "
                         "Use the connect target, or unset those variables.")
    jars = ensure_delta_jars(cache)
    Path(target.home).mkdir(parents=True, exist_ok=True)
    write_log_config(target.home)
    # pyspark reads PYSPARK_PYTHON from this process's environment when the session starts
    os.environ.update(local_spark_variables())
    builder = SparkSession.builder
    for key, value in local_spark_conf(target, jars).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


# %%
#| export
def get_spark(target: Target | None = None,  # where to run (default: `load_target()`)
             ) -> SparkSession:
    "The Spark session for `target`: Databricks' own, a Spark Connect client, or local Delta."
    if on_databricks():
        return SparkSession.builder.getOrCreate()
    if target is None:
        target = load_target()
    if target.spark == "databricks":
        raise DbxmlError(f"target {target.name!r} runs in a Databricks workspace. Run it there through "
                         "the bundle, or pick a local target here: local or connect.")
    if target.spark == "connect":
        return connect_spark(target.spark_remote)
    active = SparkSession.getActiveSession()
    warehouse = active and active.conf.get("spark.sql.warehouse.dir").removeprefix("file:")
    if active is not None and Path(warehouse) == Path(target.storage_root).resolve():
        return active
    if active is not None:  # a session for another home: Spark allows one per process
        active.stop()
    return start_local_spark(target)


# %%
#| export
def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen | None = None) -> bool:
    "True once something accepts connections at `host:port`; False after `timeout` s or if `process` exits."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.25)
    return False


# %% [markdown]
# A Spark Connect client is cheap to make, but a missing server only shows on the first
# query, after gRPC has retried for minutes. We knock on the server's port first, so a
# wrong URL or a server that is not running is reported at once, where it was configured.

# %%
#| export
def connect_spark(remote: str,  # a Spark Connect URL, e.g. `sc://localhost:15002`
                  timeout: float = 3.0,  # seconds to wait for the server's port
                 ) -> SparkSession:
    "A Spark Connect session for `remote`; a `DbxmlError` at once if nothing listens there."
    from urllib.parse import urlparse

    address = urlparse(remote.replace("sc://", "http://", 1))
    if not wait_for_port(address.hostname, address.port or 15002, timeout):
        raise DbxmlError(f"no Spark Connect server answers at {remote}. "
                         "Start one with `dbxml spark-server`, or check the target's spark_remote.")
    return SparkSession.builder.remote(remote).getOrCreate()


# %%
test_fail(lambda: connect_spark("sc://localhost:1"), contains="no Spark Connect server answers at sc://localhost:1")
test_fail(lambda: get_spark(load_target("dev", environ={})), contains="runs in a Databricks workspace")

# %% [markdown]
# ## A local Spark Connect server
#
# Databricks serverless and shared clusters only speak Spark Connect, so pipeline code
# must run under it, and a local server is how we prove that here. pyspark ships the
# server: `spark-submit --class ...SparkConnectServer`. dbxml starts it with exactly the
# local session's settings, so a Connect client sees the same Delta tables and
# metastore as a classic session on that home. One server can also serve several
# processes at once, which one embedded Derby metastore cannot.

# %%
#| export
CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"

def connect_server_command(target: Target,  # a local target whose home the server serves
                           port: int = 15002,  # the gRPC port to listen on
                           jars: list[str] | None = None,  # resolved Delta jars (default: `ensure_delta_jars()`)
                          ) -> list[str]:
    "The `spark-submit` command line that starts a Spark Connect server for `target`."
    import pyspark

    conf = local_spark_conf(target, jars if jars is not None else ensure_delta_jars())
    conf |= {"spark.connect.grpc.binding.port": str(port), "spark.app.name": f"dbxml-connect-{target.name}"}
    command = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--class", CONNECT_SERVER_CLASS]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return command + ["spark-internal"]


# %%
command = connect_server_command(scratch, port=15123, jars=["/cache/delta.jar"])
assert command[0].endswith("spark-submit") and command[1:3] == ["--class", CONNECT_SERVER_CLASS]
assert "spark.connect.grpc.binding.port=15123" in command and "spark.jars=/cache/delta.jar" in command


# %%
#| export
@contextlib.contextmanager
def connect_server(target: Target,  # a local target whose home the server serves
                   port: int = 15002,  # the gRPC port
                   timeout: float = 180,  # seconds to wait for the server to listen
                  ):
    "Run a local Spark Connect server for `target` while the block runs; yields its `sc://` URL."
    check_java()
    Path(target.home).mkdir(parents=True, exist_ok=True)
    write_log_config(target.home)
    log = Path(target.home) / "connect-server.log"
    command = connect_server_command(target, port)
    with open(log, "w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=_classic_environment())
    try:
        if not wait_for_port("localhost", port, timeout, server):
            raise DbxmlError(f"the Spark Connect server did not start on port {port} within {timeout:.0f} s "
                             f"(exit status {server.poll()}); its log is {log}.")
        yield f"sc://localhost:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


# %% [markdown]
# A local session on a scratch home (see `scratch_target`) writes a Delta table and reads it back. The table
# lands under the scratch home, and nothing is written where the process started:

# %%
cwd_before = set(os.listdir())
spark = get_spark(scratch)
spark.sql("CREATE DATABASE IF NOT EXISTS example")
spark.range(5).write.format("delta").mode("overwrite").saveAsTable("example.numbers")
test_eq(spark.table("example.numbers").count(), 5)
test_eq(spark.sql("DESCRIBE DETAIL example.numbers").first()["format"], "delta")
assert (scratch.home / "warehouse" / "example.db" / "numbers" / "_delta_log").is_dir()
assert (scratch.home / "metastore_db").is_dir() and (scratch.home / "derby.log").is_file()
test_eq(set(os.listdir()) - cwd_before, set())
assert get_spark(scratch) is spark  # the same target reuses the session
assert cached_jars(jars_cache()) is not None  # later starts need no network

# %% [markdown]
# Its Python workers run this notebook's interpreter, whatever `python3` comes first on
# `PATH` (a plain UDF reports the interpreter it runs in):

# %%
worker_interpreter = F.udf(lambda _: sys.executable, StringType())
test_eq(spark.range(1).select(worker_interpreter("id")).first()[0], sys.executable)
