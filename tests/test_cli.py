"""The command line as a user meets it: clear one-line errors, a quiet first start that fetches Delta's jars, and
a smoke job whose tables persist across processes inside the target's home and nowhere else."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BIN, ROOT, run_tool

from dbxml.spark import cached_jars


def assert_one_clear_line(result, *fragments):
    "A failed command printed exactly one line, `dbxml: ...`, containing every fragment, and no traceback."
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbxml: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_target_lists_the_valid_ones():
    result = run_tool("dbxml", "info", "--target", "stagging")
    assert_one_clear_line(result, "unknown target 'stagging'", "Valid targets: local, connect, dev, staging, prod")


def test_malformed_override_names_the_field_and_the_valid_values():
    result = run_tool("dbxml", "info", env={**os.environ, "DBXML_SPARK": "yarn"})
    assert_one_clear_line(result, "spark = 'yarn' is not valid", "local, connect, databricks")


def test_malformed_config_file_is_reported_with_its_path(tmp_path):
    broken = tmp_path / "dbxml.toml"
    broken.write_text("[targets.local\nspark = 'local'\n")
    result = run_tool("dbxml", "info", env={**os.environ, "DBXML_CONFIG": str(broken)})
    assert_one_clear_line(result, f"{broken} is not valid TOML")


def test_missing_java_is_explained_before_spark_starts(local_env):
    env = {key: value for key, value in local_env.items() if key != "JAVA_HOME"}
    env["PATH"] = os.path.dirname(sys.executable)  # the venv's tools, and no java
    assert shutil.which("java", path=env["PATH"]) is None
    result = run_tool("dbxml", "smoke", env=env)
    assert_one_clear_line(result, "Java 17 is required", "Install OpenJDK 17")


def test_doctor_reports_each_missing_prerequisite_and_fails(local_env):
    env = {key: value for key, value in local_env.items() if key != "JAVA_HOME"}
    env["PATH"] = os.path.dirname(sys.executable)  # no java here
    result = run_tool("dbxml", "doctor", env=env)
    assert result.returncode == 1
    assert result.stdout.startswith("ok    python: ")
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("FAIL  java: Java 17 is required")
    assert lines[-1] == "dbxml: 1 prerequisite(s) missing for target 'local'; see above."


IVY_LINES = (":: resolving dependencies", "Host ", "artifacts copied", "Ivy Default Cache")


@pytest.mark.slow
def test_jars_that_cannot_be_fetched_are_one_clear_error_with_the_cause(local_env, tmp_path):
    empty_repository = tmp_path / "mirror"
    empty_repository.mkdir()
    settings = tmp_path / "ivysettings.xml"  # a company mirror that has nothing: what an offline machine sees
    settings.write_text(f'<ivysettings><settings defaultResolver="mirror"/><resolvers><filesystem name="mirror">'
                        f'<artifact pattern="{empty_repository}/[organisation]/[module]/[revision]/[artifact].[ext]"/>'
                        f'</filesystem></resolvers></ivysettings>')
    env = local_env | {"DBXML_JARS_CACHE": str(tmp_path / "jars"), "DBXML_IVY_SETTINGS": str(settings)}
    result = run_tool("dbxml", "smoke", env=env)
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("dbxml: Delta Lake's jars could not be fetched from Maven Central: ") and \
        "[unresolved dependency: io.delta#delta-spark_" in first, result.stderr
    assert "Traceback" not in result.stderr and "\tat org.apache" not in result.stderr
    assert len(result.stderr.splitlines()) <= 12 and cached_jars(tmp_path / "jars") is None


def test_databricks_target_refuses_to_run_locally(local_env):
    result = run_tool("dbxml", "smoke", "--target", "dev", env=local_env)
    assert_one_clear_line(result, "target 'dev' runs in a Databricks workspace")


def test_dbxml_run_refuses_a_databricks_target_and_says_how_to_run_it_there(local_env):
    result = run_tool("dbxml", "run", "--target", "prod", "-p", "month=2013-05", env=local_env)
    assert_one_clear_line(result, "target 'prod' runs on Databricks", "databricks bundle run monthly -t prod")


def test_doctor_for_a_databricks_target_without_credentials_is_one_clear_error(local_env, tmp_path):
    env = {key: value for key, value in local_env.items()
           if not key.startswith(("DATABRICKS_", "ARM_", "AZURE_", "ACTIONS_ID_TOKEN"))}
    env |= {"DATABRICKS_CONFIG_FILE": str(tmp_path / "no-databrickscfg"), "HOME": str(tmp_path)}
    result = run_tool("dbxml", "doctor", "--target", "dev", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "FAIL  databricks auth:" in result.stderr and "DATABRICKS_HOST" in result.stderr


def can_isolate_network():
    return shutil.which("unshare") and shutil.which("ip") and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0


def offline(command):
    "`command` in a network namespace of its own, with only loopback (what a machine without a network has)."
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *command]


@pytest.mark.slow
def test_a_first_start_fetches_the_jars_quietly_and_a_second_start_offline_finds_its_table(local_env, tmp_path):
    """Two starts on one home and one empty jars cache, from a folder outside the repository. The first fetches
    Delta's jars in one line (the resolver's output kept in a log) and writes a table. The second, a new process and
    a new JVM without network (where the machine can isolate one), fetches nothing and finds that table in the home's
    metastore. Neither leaves a metastore, a warehouse or MLflow runs in the folder it ran in."""
    cache, workdir = tmp_path / "empty-jars-cache", tmp_path / "elsewhere"
    workdir.mkdir()
    env = local_env | {"DBXML_JARS_CACHE": str(cache), "DBXML_CONFIG": str(ROOT / "dbxml.toml")}
    smoke = [str(BIN / "dbxml"), "smoke", "--rows", "42"]
    first = subprocess.run(smoke, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    output = (first.stdout + first.stderr).splitlines()
    announced = [line for line in output if "fetching Delta Lake's jars" in line]
    assert len(announced) == 1 and str(cache / "resolve.log") in announced[0]
    assert not [line for line in output if line.lstrip().startswith(IVY_LINES)], output
    log = (cache / "resolve.log").read_text()
    assert ":: resolving dependencies" in log and "artifacts copied" in log
    assert cached_jars(cache) and all(Path(jar).is_relative_to(cache) for jar in cached_jars(cache))
    assert "wrote and read 42 rows: spark_catalog.local__flights.smoke_numbers (Delta version 0)" in first.stdout

    isolated = can_isolate_network()  # else the second start runs with the network: the jars still come from cache
    second = subprocess.run(offline(smoke) if isolated else smoke, cwd=workdir, env=env, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "(Delta version 1)" in second.stdout  # it found the first process's table in the metastore
    assert "fetching Delta Lake's jars" not in second.stdout + second.stderr
    home = tmp_path / "home"
    assert {"warehouse", "metastore_db", "mlflow.db", "derby.log", "mlartifacts"} <= {p.name for p in home.iterdir()}
    assert list(workdir.iterdir()) == []  # no metastore_db, spark-warehouse or mlruns where the process ran
