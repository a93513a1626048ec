"""The Terraform in infra/, checked offline: every file parses (python-hcl2), `terraform fmt` finds
nothing to change, checkov reports no failed check and every skip says why, and the names the bundle
and dbxml.toml expect (catalogs, schema, groups, storage roots, principals, GitHub variables) are the
ones Terraform creates; and `terraform validate` checks modules against the real providers' schemas, the
providers built from source (infra/tools/build-provider.sh) and named by `dev_overrides`. Each rule is also shown to catch a broken copy. (No `terraform init` or `plan` runs: no
provider registry or Azure is reachable, and the other providers cannot be built here; infra/README.md.)"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import BIN, ROOT
from support.terraform import ENVIRONMENTS, INFRA, blocks, github_variable_names, parse, tf_files

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

CHECKOV = BIN.parent / "checkov" / "bin" / "checkov"  # its own venv: it ships a fork of python-hcl2
SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")

# From the shared contract: what every bundle target needs from Terraform.
BUNDLE_TARGET_ATTRIBUTES = {
    "workspace_host", "catalog", "schema", "service_principal_application_id",
    "data_engineers_group", "data_scientists_group", "analysts_group",
}
DEPLOY_PRINCIPALS = {"dev": None, "staging": "dbxml-deploy-staging", "prod": "dbxml-deploy-prod"}


def terraform_names(folder=INFRA):
    "The names Terraform creates, read from plain data (variable defaults and locals), never evaluated."
    names_tf, variables_tf, outputs_tf = (parse(folder / name) for name in ("names.tf", "variables.tf", "outputs.tf"))
    variables = {**blocks(names_tf, "variable"), **blocks(variables_tf, "variable")}
    target = blocks(outputs_tf, "output")["bundle_targets"]["value"]
    return {
        "environments": variables["environments"]["default"],
        "schema": variables["schema"]["default"],
        "groups": variables["groups"]["default"],
        "storage_account_name": variables["storage_account_name"]["default"],
        "storage_root_format": blocks(names_tf, "locals")["storage_root_format"],
        "principals": blocks(names_tf, "locals")["principals"],
        # `{for name, env in ... : name => {a = ..., b = ...}}` stays an expression: read its keys.
        "bundle_target_attributes": set(re.findall(r"[{,]\s*(\w+)\s*=", target.split("=>", 1)[1])),
    }


def bundle_config():
    return yaml.safe_load((ROOT / "databricks.yml").read_text())


def dbxml_config():
    return tomllib.loads((ROOT / "dbxml.toml").read_text())


def name_mismatches(bundle, toml, names):
    "Every place where the bundle or dbxml.toml expects a name Terraform does not create."
    problems = []
    environments, variables = names["environments"], bundle["variables"]
    for env in ENVIRONMENTS:
        tf_env = environments.get(env) or {}
        bundle_catalog = bundle["targets"][env]["variables"]["catalog"]
        if bundle_catalog != tf_env.get("catalog"):
            problems.append(f"{env}: bundle catalog {bundle_catalog} != Terraform's {tf_env.get('catalog')}")
        toml_target = toml["targets"][env]
        if toml_target["catalog"] != tf_env.get("catalog"):
            problems.append(f"{env}: dbxml.toml catalog {toml_target['catalog']} != Terraform's {tf_env.get('catalog')}")
        storage_root = names["storage_root_format"] % (tf_env.get("container"), names["storage_account_name"])
        if toml_target["storage_root"] != storage_root:
            problems.append(f"{env}: dbxml.toml storage_root {toml_target['storage_root']} != Terraform's {storage_root}")
        if toml_target["schema"] != names["schema"]:
            problems.append(f"{env}: dbxml.toml schema {toml_target['schema']} != Terraform's {names['schema']}")
        deploy = tf_env.get("deploy_principal")
        if deploy != DEPLOY_PRINCIPALS[env] or (deploy is not None and deploy not in names["principals"]):
            problems.append(f"{env}: deploy principal {deploy} is not {DEPLOY_PRINCIPALS[env]} or is not created")
    if variables["schema"].get("default") != names["schema"]:
        problems.append(f"bundle schema {variables['schema'].get('default')} != Terraform's {names['schema']}")
    for variable, group in names["groups"].items():
        default = (variables.get(variable) or {}).get("default")
        if default != group:
            problems.append(f"bundle variable {variable} defaults to {default}, Terraform creates {group}")
    if names["bundle_target_attributes"] != BUNDLE_TARGET_ATTRIBUTES:
        problems.append(f"output bundle_targets has {sorted(names['bundle_target_attributes'])}")
    for attribute in sorted(names["bundle_target_attributes"] - {"workspace_host"}):
        if attribute not in variables:
            problems.append(f"bundle_targets.{attribute} is not a databricks.yml variable")
    return problems


def unjustified_skips(text):
    "checkov skip comments without a reason after the check id."
    return [match.group(0) for match in SKIP.finditer(text) if len((match.group(2) or "").strip()) < 10]


def run_checkov(folder):
    "checkov offline on `folder`: (summary, failed check ids)."
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make install` creates checkov's own venv")
    result = subprocess.run([str(CHECKOV), "-d", str(folder), "--framework", "terraform", "--skip-download",
                             "--compact", "--quiet", "-o", "json"], capture_output=True, text=True, timeout=600)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]  # one framework: a dict; several: a list
    summary = {key: sum(report["summary"][key] for report in reports) for key in ("passed", "failed", "parsing_errors")}
    failed = {check["check_id"] for report in reports for check in report["results"].get("failed_checks", [])}
    return summary, failed


def copy_infra(tmp_path):
    return shutil.copytree(INFRA, tmp_path / "infra", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))


# ---- 1. every .tf file parses ----

def test_every_tf_file_parses():
    files = tf_files()
    assert len(files) >= 20, [str(path) for path in files]
    for path in files:
        assert isinstance(parse(path), dict), path


def test_a_broken_tf_file_does_not_parse(tmp_path):
    broken = tmp_path / "main.tf"
    broken.write_text((INFRA / "main.tf").read_text() + '\nresource "azurerm_resource_group" "unclosed" {\n')
    with pytest.raises(Exception, match=r"Unexpected|line \d+"):
        parse(broken)


# ---- 2. terraform fmt ----

def terraform_fmt_check(folder):
    return subprocess.run(["terraform", "fmt", "-check", "-recursive", "-no-color", str(folder)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed (CI installs it)")
def test_terraform_fmt_is_clean():
    result = terraform_fmt_check(INFRA)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed (CI installs it)")
def test_terraform_fmt_catches_a_misformatted_file(tmp_path):
    infra = copy_infra(tmp_path)
    versions = infra / "versions.tf"
    text = versions.read_text()
    versions.write_text(text.replace('required_version = ">= 1.6"', 'required_version   =    ">= 1.6"'))
    assert versions.read_text() != text
    result = terraform_fmt_check(infra)
    assert result.returncode != 0
    assert "versions.tf" in result.stdout


# ---- 2b. terraform validate, against providers built from source ----

PROVIDER_BUILD = INFRA / "tools" / "build-provider.sh"
# module -> the providers it needs; the root, identities and github/ also need azuread or github, which the Go
# module proxy does not serve (infra/README.md)
VALIDATABLE = {"unity_catalog": ("databricks",), "azure_environment": ("azurerm",)}
SOURCES = {"databricks": "databricks/databricks", "azurerm": "hashicorp/azurerm"}


@pytest.fixture(scope="module")
def built_providers():
    """Provider name -> the folder holding its binary: databricks is built if needed (about 2 min, once, cached);
    azurerm only if built before (about 35 min and 4.8 GB: `bash infra/tools/build-provider.sh azurerm`)."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed (CI installs it)")
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain on PATH: no provider can be built from source here")
    built = subprocess.run(["bash", str(PROVIDER_BUILD), "databricks"], capture_output=True, text=True, timeout=3600)
    assert built.returncode == 0, built.stderr[-3000:]
    found = {"databricks": built.stdout.strip().splitlines()[-1]}
    cached = subprocess.run(["bash", str(PROVIDER_BUILD), "azurerm", "--cached"], capture_output=True, text=True)
    if cached.returncode == 0:
        found["azurerm"] = cached.stdout.strip().splitlines()[-1]
    return found


def terraform_validate(folder, providers, tmp_path):
    "`terraform validate` in `folder`, with `providers` (name -> folder) named by dev_overrides (no init needed)."
    config = tmp_path / "terraform.rc"
    overrides = "".join(f'    "{SOURCES[name]}" = "{folder_}"\n' for name, folder_ in providers.items())
    config.write_text(f"provider_installation {{\n  dev_overrides {{\n{overrides}  }}\n  direct {{}}\n}}\n")
    return subprocess.run(["terraform", f"-chdir={folder}", "validate", "-no-color"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CLI_CONFIG_FILE": str(config)})


@pytest.mark.slow
@pytest.mark.parametrize("module", VALIDATABLE)
def test_terraform_validate_passes_against_the_providers_schema(built_providers, module, tmp_path):
    missing = [name for name in VALIDATABLE[module] if name not in built_providers]
    if missing:
        pytest.skip(f"{module} needs the {', '.join(missing)} provider, not built on this machine "
                    f"(bash infra/tools/build-provider.sh {missing[0]}: about 35 min and 4.8 GB, so CI does not)")
    result = terraform_validate(INFRA / "modules" / module, built_providers, tmp_path)
    assert result.returncode == 0 and "Success! The configuration is valid" in result.stdout, \
        result.stdout + result.stderr


@pytest.mark.slow
def test_terraform_validate_catches_an_argument_the_provider_does_not_have(built_providers, tmp_path):
    module = copy_infra(tmp_path) / "modules" / "unity_catalog"
    main = module / "main.tf"
    main.write_text(main.read_text().replace('  isolation_mode = "ISOLATED"\n',
                                             '  isolation_mode = "ISOLATED"\n  colour         = "red"\n', 1))
    result = terraform_validate(module, built_providers, tmp_path)
    assert result.returncode != 0
    assert 'An argument named "colour" is not expected here' in result.stderr


# ---- 3. checkov, offline ----

def test_checkov_finds_nothing_to_fix():
    summary, failed = run_checkov(INFRA)
    assert summary["parsing_errors"] == 0, summary
    assert summary["passed"] > 0, summary
    assert summary["failed"] == 0 and not failed, (sorted(failed), summary)


def test_every_checkov_skip_says_why():
    skips = {path: unjustified_skips(path.read_text()) for path in tf_files()}
    assert sum(len(SKIP.findall(path.read_text())) for path in tf_files()) > 0
    assert {str(path): found for path, found in skips.items() if found} == {}
    assert unjustified_skips('  #checkov:skip=CKV_AZURE_35\n  #checkov:skip=CKV_AZURE_59: \n') == [
        "#checkov:skip=CKV_AZURE_35", "#checkov:skip=CKV_AZURE_59: "]


def test_checkov_fails_on_an_insecure_copy(tmp_path):
    "An old TLS version, and a network skip removed, are both reported."
    infra = copy_infra(tmp_path)
    main = infra / "main.tf"
    text = main.read_text()
    insecure = text.replace('min_tls_version                   = "TLS1_2"', 'min_tls_version                   = "TLS1_0"')
    insecure = re.sub(r"\n\s*#checkov:skip=CKV_AZURE_59:[^\n]*", "", insecure)
    assert insecure.count("TLS1_0") == 1 and "CKV_AZURE_59" not in insecure
    main.write_text(insecure)
    summary, failed = run_checkov(infra)
    assert {"CKV_AZURE_44", "CKV_AZURE_59"} <= failed, (sorted(failed), summary)


# ---- 4. the bundle, dbxml.toml and Terraform agree on names ----

def test_names_line_up():
    assert name_mismatches(bundle_config(), dbxml_config(), terraform_names()) == []


def break_bundle_catalog(bundle, toml, names):
    bundle["targets"]["staging"]["variables"]["catalog"] = "dbxml_stage"


def break_storage_root(bundle, toml, names):
    toml["targets"]["prod"]["storage_root"] = "abfss://prod@otheraccount.dfs.core.windows.net/dbxml"


def break_schema(bundle, toml, names):
    names["schema"] = "not_the_schema"


def break_group(bundle, toml, names):
    names["groups"]["analysts_group"] = "dbxml-analyst"


def break_deploy_principal(bundle, toml, names):
    names["environments"]["prod"]["deploy_principal"] = "dbxml-deploy-production"


def break_output(bundle, toml, names):
    names["bundle_target_attributes"] = names["bundle_target_attributes"] - {"analysts_group"} | {"host"}


def break_bundle_variable(bundle, toml, names):
    del bundle["variables"]["data_scientists_group"]


@pytest.mark.parametrize("breakage, reported", [
    (break_bundle_catalog, "staging: bundle catalog dbxml_stage != Terraform's dbxml_staging"),
    (break_storage_root, "prod: dbxml.toml storage_root abfss://prod@otheraccount"),
    (break_schema, f"bundle schema {dbxml_config()['targets']['dev']['schema']} != Terraform's not_the_schema"),
    (break_group, "bundle variable analysts_group defaults to dbxml-analysts, Terraform creates dbxml-analyst"),
    (break_deploy_principal, "prod: deploy principal dbxml-deploy-production"),
    (break_output, "output bundle_targets has"),
    (break_bundle_variable, "bundle_targets.data_scientists_group is not a databricks.yml variable"),
])
def test_a_name_mismatch_is_reported(breakage, reported):
    bundle, toml, names = copy.deepcopy(bundle_config()), copy.deepcopy(dbxml_config()), copy.deepcopy(terraform_names())
    breakage(bundle, toml, names)
    problems = name_mismatches(bundle, toml, names)
    assert any(problem.startswith(reported) for problem in problems), problems


def test_terraform_creates_every_environment_and_the_ci_principals():
    names = terraform_names()
    assert set(names["environments"]) == set(ENVIRONMENTS)
    assert {"dbxml-ci", "dbxml-infra"} <= set(names["principals"])


def test_root_passes_every_github_var_the_module_writes():
    """outputs.tf builds the values the github module looks up by name: the two lists agree, and the
    GitHub stack (infra/github/, its own state) hands that output to the module unchanged."""
    stack = blocks(parse(INFRA / "github" / "main.tf"), "module")["github"]
    assert stack["source"] == "../modules/github"
    assert stack["repository_variables"] == "${data.terraform_remote_state.platform.outputs.github_variables.repository}"
    assert stack["environment_variables"] == (
        "${data.terraform_remote_state.platform.outputs.github_variables.environments}")
    outputs = blocks(parse(INFRA / "outputs.tf"), "locals")
    repository, environments = github_variable_names()
    assert set(outputs["github_repository_variables"]) == repository
    assert {env: set(values) for env, values in outputs["github_environment_variables"].items()} == environments


def raw_volume_owners():
    "Who creates each environment's `raw` volume: Terraform (module argument raw_volume) and/or the bundle."
    modules = blocks(parse(INFRA / "main.tf"), "module")
    owners = {env: set() for env in ENVIRONMENTS}
    for env in ENVIRONMENTS:
        if modules[f"unity_catalog_{env}"].get("raw_volume") is True:
            owners[env].add("terraform")
    targets = yaml.safe_load((ROOT / "resources" / "catalog.yml").read_text())["targets"]
    for env, target in targets.items():
        if "raw" in ((target or {}).get("resources") or {}).get("volumes", {}):
            owners[env].add("bundle")
    return owners


def test_every_environment_gets_its_raw_volume_from_exactly_one_owner():
    "dbxml.toml's raw_root must exist everywhere; two creators of one volume would fight over it."
    assert raw_volume_owners() == {"dev": {"terraform"}, "staging": {"bundle"}, "prod": {"bundle"}}
    names = terraform_names()
    for env in ENVIRONMENTS:
        catalog = names["environments"][env]["catalog"]
        assert dbxml_config()["targets"][env]["raw_root"] == f"/Volumes/{catalog}/{names['schema']}/raw"
