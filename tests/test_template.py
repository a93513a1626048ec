"""dbxml as a Copier template (copier.yml, template/rename.py, nbs/guides/fork.md): a fork made with one
command has its own names everywhere and passes its own checks, and takes a later template version with one
command, merging the template's changes with its own.

The template here is a copy of this working tree, committed and tagged in a temporary repository, so the
tests see uncommitted changes too. Copier, git and every check are the real ones; the fork's checks run with
this project's environment (the fork has the same dependencies under its own package name)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from dbxml.hygiene import copy_repository

BIN = Path(sys.executable).parent
ANSWERS = {"project_name": "acme-ml", "package_name": "acme_ml", "catalog_prefix": "acme", "schema": "sales",
           "model_name": "late_risk", "azure_region": "northeurope", "github_owner": "acme-corp",
           "github_repo": "acme-ml"}
OLD_NAMES = json.loads((ROOT / "template" / "names.json").read_text())
# Where a fork still says `dbxml`, and why: nowhere but where its updates come from.
ALLOWED_DBXML = {".copier-answers.yml": "`_src_path` names the template the fork takes its updates from",
                 "nbs/platform/template.md": "the page about the template the fork came from, kept word for word",
                 "nbs/decisions/0020-copier-template.md": "the decision about the template, kept word for word"}
NOT_IN_FORKS = {"copier.yml", "template/names.json", "template/rename.py", "tests/test_template.py"}


def run(*command, cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    "Run `command` in `cwd`; on failure, show what it printed."
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if check and done.returncode != 0:
        raise AssertionError(f"{command} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def git(*args, cwd: Path) -> str:
    return run("git", "-c", "user.name=dbxml tests", "-c", "user.email=tests@example.org", *args, cwd=cwd).stdout


def make_fork(template: Path, destination: Path, answers: dict, ref: str) -> Path:
    "`copier copy` (the one command), then the fork's first commit, as its owner would."
    data = [f"--data={field}={value}" for field, value in answers.items()]
    run(BIN / "copier", "copy", "--trust", "--defaults", "--quiet", f"--vcs-ref={ref}", *data, template, destination,
        cwd=destination.parent)
    git("init", "-q", "-b", "main", cwd=destination)
    git("add", "-A", cwd=destination)
    git("commit", "-qm", "made from the template", cwd=destination)
    return destination


def tracked(repository: Path) -> list[str]:
    return sorted(git("ls-files", cwd=repository).split())


def fork_checks(fork: Path, package: str):
    "The fork's own `make check`, with this environment's tools: export in sync, hygiene, ruff, layers, secrets."
    env = {"PYTHONPATH": str(fork)}
    run(BIN / "nbdev_export", cwd=fork, env=env)
    assert git("status", "--porcelain", cwd=fork) == "", "nbdev_export changed the fork's package"
    run(BIN / "python", "-c", f"import sys; from {package}.cli import main; sys.exit(main(['check']))", cwd=fork, env=env)
    run(BIN / "ruff", "check", "--no-cache", package, "nbs", "tests", "setup.py", cwd=fork)
    run(BIN / "lint-imports", "--no-cache", cwd=fork, env=env)
    run(BIN / "detect-secrets-hook", "--baseline", ".secrets.baseline", *tracked(fork), cwd=fork)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    "This working tree as a template repository, released as v0.1.0 (the folder is named like the original)."
    repository = copy_repository(ROOT, tmp_path_factory.mktemp("upstream") / "dbxml")
    git("tag", "v0.1.0", cwd=repository)
    return repository


@pytest.fixture(scope="module")
def fork(template, tmp_path_factory) -> Path:
    return make_fork(template, tmp_path_factory.mktemp("team") / "acme-ml", ANSWERS, "v0.1.0")


def test_a_fork_has_its_own_names_everywhere(fork, template):
    leftovers = {path for path in git("grep", "-il", "dbxml", cwd=fork).split()}
    assert leftovers == set(ALLOWED_DBXML)
    kept = [f":!{path}" for path in ALLOWED_DBXML]
    for old in ("flight_delay", "westeurope", "dbxml_dev", "dbxmlstorage"):
        assert run("git", "grep", "-il", old, "--", *kept, cwd=fork, check=False).stdout == "", old
    # the schema, wherever a name is made of it (`local__flights.bronze_flights`, `dbxml_prod.flights.x`)
    old_schema = OLD_NAMES["schema"]
    for made in (f"local__{old_schema}\\b", f"local\\.{old_schema}\\b", f"_(dev|staging|prod)\\.{old_schema}\\b",
                 f"schema: {old_schema}\\b"):
        assert run("git", "grep", "-lE", made, "--", *kept, cwd=fork, check=False).stdout == "", made
    renamed = {path.replace("dbxml", "acme_ml") for path in tracked(template)} - NOT_IN_FORKS - {".copier-answers.yml.jinja"}
    assert set(tracked(fork)) == renamed | {".copier-answers.yml"}
    assert (fork / ".ci" / "guard" / "python").is_symlink()  # the guard that makes `python` fail stays a link
    # the names, where the project reads them
    script = ("from acme_ml.config import load_target; from acme_ml.registry import model_name; "
              "dev = load_target('dev', environ={}); print(dev.catalog, dev.schema, dev.raw_root, model_name(dev))")
    assert run(BIN / "python", "-c", script, cwd=fork, env={"PYTHONPATH": str(fork)}).stdout.split() == \
        ["acme_dev", "sales", "/Volumes/acme_dev/sales/raw", "acme_dev.sales.late_risk"]
    bundle = (fork / "databricks.yml").read_text()
    assert "bundle:\n  name: acme_ml\n" in bundle and re.search(r"schema:\n.*\n\s+default: sales\n", bundle)
    assert 'default     = "sales"' in (fork / "infra" / "names.tf").read_text()
    assert 'location             = "northeurope"' in (fork / "infra" / "terraform.tfvars.example").read_text()
    settings = (fork / "settings.ini").read_text()
    assert "lib_name = acme_ml\n" in settings and "user = acme-corp\n" in settings and "repo = acme-ml\n" in settings
    assert "console_scripts = acme_ml=acme_ml.cli:main" in settings


@pytest.mark.slow
def test_a_fork_passes_its_own_checks(fork):
    fork_checks(fork, "acme_ml")


def test_the_default_answers_copy_the_template_unchanged(template, tmp_path):
    "With dbxml's own names as the answers, the renaming changes nothing: it touches only the names."
    copy = make_fork(template, tmp_path / "same", OLD_NAMES, "v0.1.0")
    expected = set(tracked(template)) - NOT_IN_FORKS - {".copier-answers.yml.jinja"}
    assert set(tracked(copy)) == expected | {".copier-answers.yml"}
    differing = [name for name in expected if (copy / name).read_bytes() != (template / name).read_bytes()]
    assert differing == []


def edit(path: Path, old: str, new: str):
    "Replace the first `old` in `path` with `new`."
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def release(template: Path, version: str, edits: dict[str, tuple[str, str]]):
    "Change the template (`path: (old text, new text)`), commit and tag it `version`."
    for path, (old, new) in edits.items():
        text = (template / path).read_text()
        assert old in text, f"{old!r} is not in {path}"
        (template / path).write_text(text.replace(old, new, 1))
    git("commit", "-qam", f"release {version}", cwd=template)
    git("tag", version, cwd=template)


STAGE_FIX = ("by month, carrier and origin.", "by month, carrier and origin airport.")  # gold.py, its notebook, twin
WORKFLOW_STEP = ("      - name: ruff, dbxml check",
                 "      - name: Which Python\n        run: python --version\n      - name: ruff, dbxml check")
NEW_PIN = ("copier==9.19.1\n    # via dbxml (setup.py)\n",
           "copier==9.19.1\n    # via dbxml (setup.py)\ncowsay==6.1\n    # via dbxml (setup.py)\n")


@pytest.mark.slow
def test_a_fork_takes_a_template_release_with_one_command(template, tmp_path):
    fork = make_fork(template, tmp_path / "acme-ml", ANSWERS, "v0.1.0")
    # the team makes the fork its own: its own line in settings.ini and SECURITY.md, its own page
    edit(fork / "settings.ini", "keywords = ", "keywords = acme ")
    edit(fork / "SECURITY.md", "\n", "\nACME: also write to the data team.\n")
    (fork / "nbs" / "guides" / "acme.md").write_text("# ACME's notes\n")
    git("add", "-A", cwd=fork)
    git("commit", "-qm", "our changes", cwd=fork)
    # upstream releases v0.2.0: a fix in a stage, a new workflow step, a new dependency pin and range
    release(template, "v0.2.0", {
        "dbxml/gold.py": STAGE_FIX, "nbs/14_gold.ipynb": STAGE_FIX, "nbs_py/14_gold.py": STAGE_FIX,
        ".github/workflows/ci.yml": WORKFLOW_STEP, "constraints.txt": NEW_PIN,
        "settings.ini": ("pandas<3 ", "pandas<3 cowsay>=6 ")})

    page = (ROOT / "nbs" / "platform" / "template.md").read_text()
    assert "\n.venv/bin/copier update --trust\n" in page  # the command the page gives, run here as the fork would
    run(BIN / "copier", "update", "--trust", "--defaults", "--quiet", cwd=fork)

    changed = set(git("diff", "--name-only", "HEAD", cwd=fork).split())
    assert changed == {".copier-answers.yml", "acme_ml/gold.py", "nbs/14_gold.ipynb", "nbs_py/14_gold.py",
                       ".github/workflows/ci.yml", "constraints.txt", "settings.ini"}
    assert "_commit: v0.2.0" in (fork / ".copier-answers.yml").read_text()
    assert "origin airport." in (fork / "acme_ml" / "gold.py").read_text()
    assert "- name: Which Python" in (fork / ".github" / "workflows" / "ci.yml").read_text()
    assert "ruff, acme_ml check" in (fork / ".github" / "workflows" / "ci.yml").read_text()  # renamed context
    assert "cowsay==6.1\n" in (fork / "constraints.txt").read_text()
    settings = (fork / "settings.ini").read_text()
    assert "keywords = acme " in settings and "pandas<3 cowsay>=6 " in settings  # both sides of one file
    assert "ACME: also write to the data team." in (fork / "SECURITY.md").read_text()
    assert (fork / "nbs" / "guides" / "acme.md").exists()
    assert not list(fork.rglob("*.rej")) and "<<<<<<<" not in git("diff", "HEAD", cwd=fork)
    assert set(git("grep", "-il", "dbxml", cwd=fork).split()) == set(ALLOWED_DBXML)
    git("commit", "-qam", "take dbxml v0.2.0", cwd=fork)
    fork_checks(fork, "acme_ml")


@pytest.mark.slow
def test_an_update_leaves_a_conflict_only_where_both_changed_the_same_line(template, tmp_path):
    latest = git("describe", "--tags", "--abbrev=0", cwd=template).strip()
    fork = make_fork(template, tmp_path / "acme-ml", ANSWERS, latest)
    edit(fork / "acme_ml.toml", 'schema = "sales"', 'schema = "sales_eu"')
    edit(fork / "Makefile", "TARGET ?= local", "TARGET ?= acme_local")
    git("commit", "-qam", "ours", cwd=fork)
    release(template, "v0.9.0", {"Makefile": ("TARGET ?= local", "TARGET ?= local_default")})
    run(BIN / "copier", "update", "--trust", "--defaults", "--quiet", cwd=fork, check=False)
    conflicted = set(git("diff", "--name-only", "--diff-filter=U", cwd=fork).split())
    assert conflicted == {"Makefile"}
    makefile = (fork / "Makefile").read_text()
    assert "<<<<<<< before updating" in makefile and "TARGET ?= acme_local" in makefile
    assert "TARGET ?= local_default" in makefile
    assert 'schema = "sales_eu"' in (fork / "acme_ml.toml").read_text()  # the fork's change elsewhere stays
