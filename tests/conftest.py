"Shared fixtures: a copy of the repository to break things in, and a scratch home for local runs."
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dbxml.hygiene import copy_repository

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def restore_environment():
    "Undo any change a test makes to os.environ (pyspark's Connect client sets variables that child processes inherit)."
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def repo_copy(tmp_path):
    "A new git repository holding this working tree's files (tracked and untracked, not ignored), committed."
    return copy_repository(ROOT, tmp_path / "repo")


def free_port():
    "A TCP port on localhost that nothing listens on right now."
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def run_tool(name, *args, cwd=ROOT, env=None, timeout=600):
    "Run a console script of this environment; return the completed process (text output)."
    return subprocess.run([str(BIN / name), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def local_env(tmp_path):
    "Environment for a dbxml process whose local home is a fresh folder."
    return {**os.environ, "DBXML_HOME": str(tmp_path / "home"), "DBXML_TARGET": "local"}


@pytest.fixture(scope="session")
def python_without_pandas(tmp_path_factory):
    """A bare venv (no pip, no packages) whose `bin` holds `python3` and `python`: what a fresh machine's own
    Python is to dbxml. Put first on PATH, it is what Spark would start for its workers if nobody named one."""
    venv = tmp_path_factory.mktemp("machine-python") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    probe = subprocess.run([str(venv / "bin" / "python3"), "-c", "import pandas"], capture_output=True, text=True,
                           env={"PATH": os.defpath})
    assert "No module named 'pandas'" in probe.stderr, "the stand-in machine Python must not have pandas"
    return venv / "bin"


def environment_without_pandas(machine_python_bin, home):
    "Environment for a dbxml process on a local `home`, with a `python3` that cannot import pandas first on PATH."
    inherited = {key: value for key, value in os.environ.items()
                 if key not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_HOME", "PYTHONPATH")}
    return inherited | {"PATH": f"{machine_python_bin}{os.pathsep}{os.environ['PATH']}",
                        "DBXML_HOME": str(home), "DBXML_TARGET": "local"}
