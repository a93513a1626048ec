"""The GitHub workflows are valid against the GitHub workflow schema that check-jsonschema ships
(and that validation rejects an unknown key), and they keep the rules of issue 6: actions pinned to
exact versions, OIDC only (no secrets), id-token only where a job logs in, a concurrency group
everywhere, and the pull-request, main and tag paths run what they must. Each rule is a small
function over the parsed YAML; each is also shown failing on a broken copy."""
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_tool
from support.terraform import github_variable_names

WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))

# The GitHub Actions variables a workflow may read are the ones Terraform writes (infra/modules/github).
# Environment-level ones exist only in the `staging`, `prod` and `infra` environments, so only a job
# with an environment may read them.
REPOSITORY_VARS, VARS_BY_ENVIRONMENT = github_variable_names()
ENVIRONMENT_VARS = set().union(*VARS_BY_ENVIRONMENT.values())

EXACT_VERSION = re.compile(r"^[\w.-]+/[\w./-]+@v\d+\.\d+\.\d+$")
# Auth by a stored credential instead of OIDC: keys and environment variables that carry one.
SECRET_AUTH_KEYS = {"client-secret", "creds", "DATABRICKS_TOKEN", "ARM_CLIENT_SECRET", "DATABRICKS_CLIENT_SECRET",
                    "AZURE_CLIENT_SECRET"}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
SECRET_REFERENCE = re.compile(r"\bsecrets\.(\w+)")
VARS_REFERENCE = re.compile(r"vars\.(\w+)")
MATRIX_REFERENCE = re.compile(r"\$\{\{\s*matrix\.(\w+)\s*\}\}")


# ---- reading workflows ----

def load(path):
    "A workflow as a dict; PyYAML reads the key `on` as True, so it is put back under 'on'."
    workflow = yaml.safe_load(Path(path).read_text())
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def triggers(workflow):
    "The workflow's events as a dict (GitHub also allows a string or a list)."
    on = workflow["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return {event: config or {} for event, config in on.items()}


def jobs(workflow):
    return workflow.get("jobs", {}).items()


def steps(job):
    return job.get("steps", [])


def strings(node):
    "Every key and scalar value under node, as strings."
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif node is not None:
        yield str(node)


def matrix_rows(job):
    "The job's matrix expanded to one dict per run (a list axis, or `include` rows); [{}] without a matrix."
    matrix = job.get("strategy", {}).get("matrix", {})
    rows = [{}]
    for axis, values in matrix.items():
        if axis not in ("include", "exclude"):
            rows = [{**row, axis: value} for row in rows for value in values]
    if matrix.get("include"):
        rows = [row for row in rows if row] + list(matrix["include"])
    return rows


def commands(job):
    "The job's run commands, once per matrix row with `${{ matrix.* }}` filled in, whitespace collapsed."
    for row in matrix_rows(job):
        for step in steps(job):
            if "run" in step:
                text = MATRIX_REFERENCE.sub(lambda m, row=row: str(row.get(m[1], m[0])), step["run"])
                yield " ".join(text.replace('"', "").split())


def environment(job):
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def logs_in(job):
    return any(step.get("uses", "").lower().startswith("azure/login@") for step in steps(job))


def permissions(workflow, job):
    "The job's effective permissions (a job's own block replaces the workflow's)."
    return job.get("permissions", workflow.get("permissions", {})) or {}


# ---- rules: each returns what breaks it (empty when the workflow keeps it) ----

def unpinned_actions(workflow):
    "`uses:` of steps and jobs not pinned to an exact vX.Y.Z tag (local ./ actions excepted)."
    uses = [step["uses"] for _, job in jobs(workflow) for step in steps(job) if "uses" in step]
    uses += [job["uses"] for _, job in jobs(workflow) if "uses" in job]
    return [use for use in uses if not use.startswith("./") and not EXACT_VERSION.match(use)]


def secret_auth(workflow):
    "Stored credentials: any secrets.* but GITHUB_TOKEN, and keys or variables that hold a secret."
    found = [text for text in strings(workflow) if text in SECRET_AUTH_KEYS]
    found += [f"secrets.{name}" for text in strings(workflow) for expression in EXPRESSION.findall(text)
              for name in SECRET_REFERENCE.findall(expression) if name != "GITHUB_TOKEN"]
    return found


def id_token_misuse(workflow):
    "Jobs that log in without id-token: write, or hold id-token: write without logging in or deploying Pages."
    problems = []
    if workflow.get("permissions", {}).get("id-token"):
        problems.append("workflow-level id-token")
    for name, job in jobs(workflow):
        has_token = permissions(workflow, job).get("id-token") == "write"
        pages = any(step.get("uses", "").startswith("actions/deploy-pages@") for step in steps(job))
        if logs_in(job) and not has_token:
            problems.append(f"{name} logs in without id-token: write")
        if has_token and not (logs_in(job) or pages):
            problems.append(f"{name} has id-token: write but does not log in")
    return problems


def concurrency_problems(workflow):
    "No concurrency group, or a deploy (a job with an environment) that a newer run may cancel."
    concurrency = workflow.get("concurrency")
    if not isinstance(concurrency, dict) or not concurrency.get("group"):
        return ["no concurrency group"]
    deploys = any(environment(job) in ("staging", "prod") for _, job in jobs(workflow))
    if deploys and concurrency.get("cancel-in-progress") is not False:
        return ["a deploy can be cancelled halfway"]
    return []


def jobs_without_timeout(workflow):
    return [name for name, job in jobs(workflow) if "uses" not in job and "timeout-minutes" not in job]


def unknown_vars(workflow):
    "vars.* names Terraform does not write, and environment-level ones read by a job with no environment."
    used = {name for text in strings(workflow) for name in VARS_REFERENCE.findall(text)}
    problems = sorted(used - REPOSITORY_VARS - ENVIRONMENT_VARS)
    for name, job in jobs(workflow):
        outside = {v for text in strings(job) for v in VARS_REFERENCE.findall(text)} & ENVIRONMENT_VARS
        if outside and not environment(job):
            problems.append(f"{name} reads {sorted(outside)} outside an environment")
    return problems


def unretried_soft_failures(workflow):
    """Steps allowed to fail (`continue-on-error`) that nothing retries. Only a deploy may fail softly (a new
    environment's first deploy stops at the quality monitor), and a later step must then deploy and run again."""
    problems = []
    for name, job in jobs(workflow):
        for index, step in enumerate(steps(job)):
            if not step.get("continue-on-error"):
                continue
            command = " ".join(step.get("run", "").split())
            if not command.startswith("databricks bundle deploy"):
                problems.append(f"{name}: {step.get('name', command)} may fail unseen")
                continue
            retry = f"steps.{step.get('id')}.outcome == 'failure'"
            retries = [" ".join(later.get("run", "").split()) for later in steps(job)[index + 1:]
                       if retry in str(later.get("if", ""))]
            if not any(runs([text], *command.split()) and runs([text], "databricks", "bundle", "run")
                       for text in retries):
                problems.append(f"{name}: {command} may fail and is not tried again with a run after it")
    return problems


def pull_request_commands(workflows):
    "Every command of every workflow a pull request triggers."
    return [command for workflow in workflows if "pull_request" in triggers(workflow)
            for _, job in jobs(workflow) for command in commands(job)]


def runs(commands_, *words):
    "Whether some command has all these words, in this order (other words may come between)."
    def has(command):
        tokens = iter(command.split())
        return all(word in tokens for word in words)
    return any(has(command) for command in commands_)


def pull_request_gaps(workflows):
    "What the issue asks of a pull request that no pull-request workflow runs."
    commands_ = pull_request_commands(workflows)
    wanted = {
        "lint, hygiene, nbdev_test, pytest (.ci/run)": ("bash", ".ci/run"),
        "bundle validate staging": ("databricks", "bundle", "validate", "-t", "staging"),
        "bundle validate prod": ("databricks", "bundle", "validate", "-t", "prod"),
        "terraform fmt": ("terraform", "fmt", "-check"),
        "terraform validate": ("terraform", "validate"),
        "terraform plan": ("terraform", "plan"),
        "secret scan": ("make", "secrets"),
        "dependency audit": ("make", "audit"),
    }
    return [label for label, words in wanted.items() if not runs(commands_, *words)]


def after_ci_on_main(workflow):
    "Whether the workflow runs only after CI completes on main (workflow_run of CI, branch main)."
    events = triggers(workflow)
    run = events.get("workflow_run") or {}
    return set(events) == {"workflow_run"} and run.get("workflows") == ["CI"] and run.get("branches") == ["main"]


def only_on_tags(workflow):
    "Whether a push of a v* tag is the only event that starts the workflow."
    events = triggers(workflow)
    push = events.get("push") or {}
    return set(events) == {"push"} and push.get("tags") == ["v*"] and not push.get("branches")


def deploy_jobs(workflows, target):
    "(workflow, job) pairs that run `databricks bundle deploy -t <target>`."
    return [(workflow, job) for workflow in workflows for _, job in jobs(workflow)
            if runs(list(commands(job)), "databricks", "bundle", "deploy", "-t", target)]


def main_path_gaps(workflows):
    "What the merge-to-main path must do: deploy staging after CI, as staging, and run one month."
    deploys = deploy_jobs(workflows, "staging")
    if not deploys:
        return ["nothing deploys staging"]
    problems = []
    for workflow, job in deploys:
        cmds = list(commands(job))
        if not after_ci_on_main(workflow):
            problems.append("staging deploy does not wait for CI on main")
        if "success" not in str(job.get("if", "")):
            problems.append("staging deploy does not check CI's conclusion")
        if environment(job) != "staging":
            problems.append("staging deploy outside environment staging")
        if not runs(cmds, "databricks", "bundle", "run", "monthly", "-t", "staging", "--params", "month=2013-01"):
            problems.append("no integration run of monthly on 2013-01")
    return problems


def tag_path_gaps(workflows):
    "What the release path must do: deploy prod only on v* tags, in environment prod, and run nothing."
    deploys = deploy_jobs(workflows, "prod")
    if not deploys:
        return ["nothing deploys prod"]
    problems = []
    for workflow, job in deploys:
        if not only_on_tags(workflow):
            problems.append("prod deploys on something other than a v* tag")
        if environment(job) != "prod":
            problems.append("prod deploy outside environment prod")
        if runs(list(commands(job)), "databricks", "bundle", "run"):
            problems.append("prod deploy also runs a job (the schedule does)")
    return problems


# ---- the real tree ----

def validate(*paths):
    return run_tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, paths))


def test_every_workflow_is_valid():
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "docs.yml", "deploy-staging.yml", "deploy-prod.yml"}
    result = validate(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_workflow_with_an_unknown_key_is_rejected(tmp_path):
    broken = broken_copy(tmp_path, "ci.yml", "    timeout-minutes: 90\n", "    timeout-minutes: 90\n    runs-onn: ubuntu-24.04\n")
    result = validate(broken)
    assert result.returncode != 0
    assert "runs-onn" in result.stdout + result.stderr


def test_ci_workflow_runs_what_ci_runs_here():
    "GitHub's CI and the local CI run the same script, so they cannot drift apart."
    assert "run: bash .ci/run" in (WORKFLOW_DIR / "ci.yml").read_text()
    assert "make test" in Path(ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("rule", [unpinned_actions, secret_auth, id_token_misuse, concurrency_problems,
                                  jobs_without_timeout, unknown_vars, unretried_soft_failures])
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_workflow_keeps_the_rule(rule, path):
    assert rule(load(path)) == []


def test_pull_requests_run_every_check():
    assert pull_request_gaps([load(path) for path in WORKFLOWS]) == []


def test_main_deploys_staging_and_runs_one_month():
    assert main_path_gaps([load(path) for path in WORKFLOWS]) == []


def test_tags_and_only_tags_deploy_prod():
    assert tag_path_gaps([load(path) for path in WORKFLOWS]) == []


def test_a_release_tag_is_checked_then_publishes_the_wheel_the_notes_and_the_site():
    "release.yml (nbs/35_release.ipynb): on v* tags only, the tag checked before anything is published."
    release = load(WORKFLOW_DIR / "release.yml")
    assert only_on_tags(release)
    [(_, job)] = jobs(release)
    assert permissions(release, job) == {"contents": "write"}
    commands_ = list(commands(job))
    check = next(index for index, command in enumerate(commands_) if runs([command], "dbxml", "release", "--check"))
    publish = next(index for index, command in enumerate(commands_) if runs([command], "gh", "release", "create"))
    assert check < publish and runs(commands_[publish:], "--notes-file", "build/release-notes.md")
    assert triggers(load(WORKFLOW_DIR / "docs.yml")).get("push") == {"tags": ["v*"]}


def test_this_version_can_be_released(capsys):
    "What release.yml checks, on this repository: its version's tag would pass, with CHANGELOG.md's notes."
    from dbxml.cli import main
    from dbxml.release import project_version

    version = project_version(ROOT)
    assert main(["release", "--root", str(ROOT), "--check", f"v{version}"]) == 0
    notes = capsys.readouterr().out
    assert notes.strip() and f"## {version}" not in notes  # the section's body, without its heading
    assert main(["release", "--root", str(ROOT), "--check", "v9.9.9"]) == 1


def test_prod_and_staging_environments_are_used_only_by_their_deploys():
    "A job in staging or prod gets that deploy principal's token: only the deploy job may ask for it."
    for path in WORKFLOWS:
        for name, job in jobs(load(path)):
            if environment(job) in ("staging", "prod"):
                assert name == f"deploy-{environment(job)}", (path.name, name)


# ---- each rule fails on a broken copy ----

def broken_copy(tmp_path, name, old, new):
    "A copy of workflow `name` in tmp_path with `old` replaced by `new` (which must change it)."
    text = (WORKFLOW_DIR / name).read_text()
    assert old in text, old
    copy = tmp_path / name
    copy.write_text(text.replace(old, new))
    return copy


@pytest.mark.parametrize("pin", ["@v4", "@main", "@v7.0", "@11bd71901bbe5b1630ceea73d27597364c9af683"])
def test_an_action_not_pinned_to_an_exact_version_fails(tmp_path, pin):
    copy = broken_copy(tmp_path, "ci.yml", "actions/checkout@v7.0.1", f"actions/checkout{pin}")
    assert set(unpinned_actions(load(copy))) == {f"actions/checkout{pin}"}


@pytest.mark.parametrize("old, new", [
    ("          allow-no-subscriptions: true\n",
     "          allow-no-subscriptions: true\n          client-secret: ${{ secrets.AZURE_CLIENT_SECRET }}\n"),
    ("      DATABRICKS_AUTH_TYPE: azure-cli\n", "      DATABRICKS_TOKEN: ${{ vars.DATABRICKS_HOST }}\n"),
    ("          client-id: ${{ vars.AZURE_CLIENT_ID }}\n", "          creds: ${{ secrets.AZURE_CREDENTIALS }}\n"),
])
def test_secret_based_auth_fails(tmp_path, old, new):
    copy = broken_copy(tmp_path, "deploy-staging.yml", old, new)
    assert secret_auth(load(copy))


def test_a_login_without_id_token_fails(tmp_path):
    copy = broken_copy(tmp_path, "deploy-prod.yml", "      contents: read\n      id-token: write\n",
                       "      contents: read\n")
    assert id_token_misuse(load(copy)) == ["deploy-prod logs in without id-token: write"]


def test_id_token_for_a_job_that_does_not_log_in_fails(tmp_path):
    copy = broken_copy(tmp_path, "ci.yml", "permissions:\n  contents: read\n",
                       "permissions:\n  contents: read\n  id-token: write\n")
    assert "workflow-level id-token" in id_token_misuse(load(copy))
    assert "test has id-token: write but does not log in" in id_token_misuse(load(copy))


def test_a_workflow_without_concurrency_fails(tmp_path):
    copy = broken_copy(tmp_path, "docs.yml", "concurrency:\n  group: docs-pages\n", "concurrency:\n")
    assert concurrency_problems(load(copy)) == ["no concurrency group"]


def test_a_deploy_that_can_be_cancelled_fails(tmp_path):
    copy = broken_copy(tmp_path, "deploy-staging.yml", "cancel-in-progress: false", "cancel-in-progress: true")
    assert concurrency_problems(load(copy)) == ["a deploy can be cancelled halfway"]


def test_a_job_without_timeout_fails(tmp_path):
    copy = broken_copy(tmp_path, "deploy-prod.yml", "    timeout-minutes: 5\n", "")
    assert jobs_without_timeout(load(copy)) == ["ci-passed"]


def test_a_soft_deploy_failure_that_is_not_retried_fails(tmp_path):
    copy = broken_copy(tmp_path, "deploy-staging.yml", "if: steps.deploy.outcome == 'failure'", "if: false")
    assert unretried_soft_failures(load(copy)) == [
        "deploy-staging: databricks bundle deploy -t staging may fail and is not tried again with a run after it"]


def test_a_soft_failure_of_anything_but_a_deploy_fails(tmp_path):
    copy = broken_copy(tmp_path, "deploy-prod.yml", "        run: databricks bundle deploy -t prod\n",
                       "        continue-on-error: true\n        run: databricks bundle validate -t prod\n")
    assert unretried_soft_failures(load(copy)) == ["deploy-prod: databricks bundle deploy -t prod may fail unseen"]


def test_a_variable_outside_the_contract_fails(tmp_path):
    copy = broken_copy(tmp_path, "ci.yml", "vars.DATABRICKS_PROD_HOST", "vars.DATABRICKS_PRODUCTION_HOST")
    assert unknown_vars(load(copy)) == ["DATABRICKS_PRODUCTION_HOST"]


def test_an_environment_variable_outside_an_environment_fails(tmp_path):
    copy = broken_copy(tmp_path, "ci.yml", "vars.AZURE_CI_CLIENT_ID", "vars.AZURE_CLIENT_ID")
    assert unknown_vars(load(copy)) == ["bundle reads ['AZURE_CLIENT_ID'] outside an environment"]


@pytest.mark.parametrize("old, new, gap", [
    ("run: bash .ci/run", "run: make check", "lint, hygiene, nbdev_test, pytest (.ci/run)"),
    ("          - target: prod\n", "          - target: production\n", "bundle validate prod"),
    ("run: terraform fmt -check -recursive", "run: terraform fmt -recursive", "terraform fmt"),
    ("run: terraform plan -lock=false -input=false", "run: terraform show", "terraform plan"),
    ("run: make audit", "run: make secrets", "dependency audit"),
])
def test_a_pull_request_path_missing_a_check_fails(tmp_path, old, new, gap):
    copy = broken_copy(tmp_path, "ci.yml", old, new)
    others = [load(path) for path in WORKFLOWS if path.name != "ci.yml"]
    assert pull_request_gaps([load(copy), *others]) == [gap]


@pytest.mark.parametrize("old, new, gap", [
    ("    branches: [main]\n", "", "staging deploy does not wait for CI on main"),
    ("if: github.event.workflow_run.conclusion == 'success' && ", "if: ",
     "staging deploy does not check CI's conclusion"),
    ("      name: staging\n", "      name: prod\n", "staging deploy outside environment staging"),
    ("--params month=2013-01", "--params month=2013-02", "no integration run of monthly on 2013-01"),
])
def test_a_broken_main_path_fails(tmp_path, old, new, gap):
    copy = broken_copy(tmp_path, "deploy-staging.yml", old, new)
    assert main_path_gaps([load(copy)]) == [gap]


@pytest.mark.parametrize("old, new, gap", [
    ('    tags: ["v*"]\n', '    branches: [main]\n    tags: ["v*"]\n', "prod deploys on something other than a v* tag"),
    ("on:\n  push:\n", "on:\n  workflow_dispatch:\n  push:\n", "prod deploys on something other than a v* tag"),
    ("      name: prod\n", "      name: staging\n", "prod deploy outside environment prod"),
    ("run: databricks bundle deploy -t prod\n", "run: databricks bundle deploy -t prod && databricks bundle run monthly -t prod\n",
     "prod deploy also runs a job (the schedule does)"),
])
def test_a_broken_tag_path_fails(tmp_path, old, new, gap):
    copy = broken_copy(tmp_path, "deploy-prod.yml", old, new)
    assert tag_path_gaps([load(copy)]) == [gap]
