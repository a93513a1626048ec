"""Secrets stay out: detect-secrets fails on a committed fake secret, in `make secrets` and in the pre-commit hook;
`dbxml check` fails on a token in a notebook's output or metadata; `make check` runs the secret scan (the real tree
passes it in `make check`, which `make test` runs first, and in test_repository_rules' pre-commit run). Fake
credentials are built at run time, so that this file holds none."""
import json
import subprocess
import sys

from conftest import ROOT, run_tool

from dbxml.hygiene import git

FAKE_AWS_KEY = "AKIA" + "J4X7Q2ZP9M3K8W5R"
FAKE_PRIVATE_KEY = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\n" + "b3BlbnNzaC1rZXktdjE" * 3 + "\n"
FAKE_DATABRICKS_TOKEN = "dapi" + "0123456789abcdef" * 2 + "-3"
FAKE_CONNECTION_STRING = ("DefaultEndpointsProtocol=https;AccountName=dbxmlstorage;AccountKey="
                          + "Zm9vYmFy" * 11 + ";EndpointSuffix=core.windows.net")


def make(target, cwd):
    "Run a Makefile target with this environment's tools, without reinstalling them."
    return subprocess.run(["make", f"VENV={sys.prefix}", "-o", f"{sys.prefix}/.installed", target], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def add_output(path, text):
    "Give the first code cell of the notebook at `path` a stdout output showing `text`."
    notebook = json.loads(path.read_text())
    number, cell = next((number, cell) for number, cell in enumerate(notebook["cells"], start=1)
                        if cell["cell_type"] == "code")
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": [f"connecting with {text}\n"]}]
    path.write_text(json.dumps(notebook, indent=1) + "\n")
    return number


def test_a_committed_fake_secret_fails_the_scan_and_the_pre_commit_hook(repo_copy):
    (repo_copy / "notes.md").write_text(f"aws_access_key_id = {FAKE_AWS_KEY}\n")
    # settings.ini has a reviewed false positive in the baseline; that must not hide a new secret beside it
    with (repo_copy / "settings.ini").open("a") as settings:
        settings.write(f"# {FAKE_PRIVATE_KEY}")
    git("add", "-A", cwd=repo_copy)
    git("commit", "-qm", "leak", cwd=repo_copy)
    scan = make("secrets", repo_copy)
    assert scan.returncode != 0
    for name, kind in [("notes.md", "AWS Access Key"), ("settings.ini", "Private Key")]:
        assert f"Location:    {name}" in scan.stdout and kind in scan.stdout, scan.stdout
    assert FAKE_AWS_KEY not in scan.stdout  # the report names the file and line, not the value
    (repo_copy / ".venv").symlink_to(sys.prefix)  # the hooks run the tools installed in .venv
    hook = run_tool("pre-commit", "run", "detect-secrets", "--files", "notes.md", "settings.ini", cwd=repo_copy)
    assert hook.returncode == 1 and "notes.md" in hook.stdout, hook.stdout + hook.stderr


def test_a_token_in_a_notebook_output_fails_the_hygiene_check(repo_copy):
    number = add_output(repo_copy / "nbs" / "02_catalog.ipynb", FAKE_DATABRICKS_TOKEN)
    result = run_tool("dbxml", "check", "--no-sync", "--root", str(repo_copy))
    assert result.returncode == 1
    assert (f"nbs/02_catalog.ipynb: cell {number} output 1 (stdout): Databricks personal access token"
            in result.stderr), result.stderr
    assert FAKE_DATABRICKS_TOKEN[4:] not in result.stderr + result.stdout


def test_a_key_in_notebook_or_cell_metadata_fails_the_hygiene_check(repo_copy):
    path = repo_copy / "nbs" / "02_catalog.ipynb"
    notebook = json.loads(path.read_text())
    notebook["metadata"]["connection"] = {"storage": FAKE_CONNECTION_STRING}
    notebook["cells"][2]["metadata"]["deploy"] = FAKE_AWS_KEY
    path.write_text(json.dumps(notebook, indent=1) + "\n")
    result = run_tool("dbxml", "check", "--no-sync", "--root", str(repo_copy))
    assert result.returncode == 1
    for problem in ["notebook metadata.connection.storage: Azure Storage Account access key",
                    "cell 3 metadata.deploy: AWS Access Key"]:
        assert f"nbs/02_catalog.ipynb: {problem}" in result.stderr, result.stderr
    assert "Zm9vYmFy" not in result.stderr and FAKE_AWS_KEY not in result.stderr


def test_make_check_runs_the_secret_scan():
    planned = subprocess.run(["make", "--dry-run", f"VENV={sys.prefix}", "-o", f"{sys.prefix}/.installed", "check"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "detect-secrets-hook --baseline .secrets.baseline" in planned
