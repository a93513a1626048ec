"""The GitHub workflows are valid against the GitHub workflow schema that
check-jsonschema ships, and that validation rejects a workflow with an unknown key."""
from pathlib import Path

from conftest import ROOT, run_tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def validate(*paths):
    return run_tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, paths))


def test_every_workflow_is_valid():
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "docs.yml"}
    result = validate(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_workflow_with_an_unknown_key_is_rejected(tmp_path):
    broken = tmp_path / "ci.yml"
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    broken.write_text(text.replace("    timeout-minutes: 90\n", "    timeout-minutes: 90\n    runs-onn: ubuntu-24.04\n"))
    assert broken.read_text() != text
    result = validate(broken)
    assert result.returncode != 0
    assert "runs-onn" in result.stdout + result.stderr


def test_ci_workflow_runs_what_ci_runs_here():
    "GitHub's CI and the local CI run the same script, so they cannot drift apart."
    assert "run: bash .ci/run" in (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "make test" in Path(ROOT / ".ci" / "run").read_text()
