"""The governance page (nbs/platform/governance.md) says who may do what in each environment; Terraform
(infra/) is what grants it. This test reads both and fails when they disagree, so the page cannot drift
from the grants an auditor would find."""
import re

from conftest import ROOT
from support.terraform import ENVIRONMENTS, INFRA, blocks, parse

PAGE = ROOT / "nbs" / "platform" / "governance.md"
TABLE = re.compile(r"<!-- access-table[^>]*-->\n(.*?)<!-- /access-table -->", re.S)


def page_access(text):
    "{who: {environment: privileges}} from the page's access table ('owner' counts as one; 'none' is empty)."
    rows = [line.strip().strip("|").split("|") for line in TABLE.search(text)[1].strip().splitlines()]
    header = [cell.strip() for cell in rows[0]]
    access = {}
    for cells in rows[2:]:  # after the header and its |---| line
        who, *per_environment = (cell.strip().strip("`") for cell in cells)
        access[who] = {environment: set() if cell == "none" else {item.strip() for item in cell.split(",")}
                       for environment, cell in zip(header[1:], per_environment, strict=True)}
    return access


def terraform_access():
    "{who: {environment: privileges}} from the unity_catalog module calls, resolved against names.tf."
    names = parse(INFRA / "names.tf")
    variables, local = blocks(names, "variable"), blocks(names, "locals")
    groups, environments = variables["groups"]["default"], variables["environments"]["default"]
    modules = blocks(parse(INFRA / "main.tf"), "module")

    def principal(expression):
        "A module argument naming a principal, as the name people see."
        if found := re.fullmatch(r"\$\{\(?var\.groups\.(\w+)\)?\}", expression):
            return groups[found[1]]
        if found := re.fullmatch(r'\$\{local\.deploy_client_id\["(\w+)"\]\}', expression):
            return environments[found[1]]["deploy_principal"]
        if expression == "${(local.ci_client_id)}":
            return "dbxml-ci"
        raise AssertionError(f"unknown principal expression {expression}")

    access = {}
    for environment in ENVIRONMENTS:
        call = modules[f"unity_catalog_{environment}"]
        for who, privileges in call["grants"].items():
            listed = re.fullmatch(r"\$\{local\.privileges\.(\w+)\}", privileges)[1]
            access.setdefault(principal(who), {})[environment] = set(local["privileges"][listed])
        access.setdefault(principal(call["owner"]), {}).setdefault(environment, set()).add("owner")
    return {who: {environment: per.get(environment, set()) for environment in ENVIRONMENTS}
            for who, per in access.items()}


def differences(page, terraform):
    "Lines naming each (principal, environment) whose privileges the page and Terraform disagree on."
    found = []
    for who in sorted(set(page) | set(terraform)):
        for environment in ENVIRONMENTS:
            said = page.get(who, {}).get(environment, set())
            granted = terraform.get(who, {}).get(environment, set())
            if said != granted:
                found.append(f"{who} in {environment}: page says {sorted(said)}, Terraform grants {sorted(granted)}")
    return found


def test_the_access_table_is_what_terraform_grants():
    page, terraform = page_access(PAGE.read_text()), terraform_access()
    assert {"dbxml-data-scientists", "dbxml-deploy-prod", "dbxml-ci"} <= set(terraform)
    assert differences(page, terraform) == []


def test_a_page_that_promises_more_than_terraform_grants_is_caught():
    text = PAGE.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `dbxml-analysts`"))
    broken = text.replace(row, row.replace("| none | none |", "| SELECT | none |", 1))
    assert broken != text
    assert differences(page_access(broken), terraform_access()) == [
        "dbxml-analysts in dev: page says ['SELECT'], Terraform grants []"]
    missing = text.replace(next(line for line in text.splitlines() if line.startswith("| `dbxml-ci`")) + "\n", "")
    assert len(differences(page_access(missing), terraform_access())) == 2  # staging and prod
