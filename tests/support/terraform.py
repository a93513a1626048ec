"""Reading infra/'s Terraform as plain data, offline (python-hcl2, nothing evaluated): shared by the
infra, governance and workflow tests."""
from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions

INFRA = Path(__file__).resolve().parents[2] / "infra"
ENVIRONMENTS = ("dev", "staging", "prod")
PLAIN = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def tf_files(folder=INFRA):
    "Every .tf file under `folder`, providers' downloads left out."
    return sorted(path for path in folder.rglob("*.tf") if ".terraform" not in path.parts)


def parse(path):
    "One .tf file as plain Python data (strings unquoted, blocks as dicts)."
    with open(path) as file:
        return hcl2.load(file, serialization_options=PLAIN)


def blocks(config, kind):
    "Merge the list of `kind` blocks (variable, locals, output, module) of a parsed file into one dict."
    merged = {}
    for block in config.get(kind, []):
        merged.update(block)
    return merged


def github_variable_names(folder=INFRA):
    "The GitHub Actions variables Terraform's github module writes: (repository level, {environment: names})."
    github = blocks(parse(folder / "modules" / "github" / "main.tf"), "locals")
    return set(github["repository_variable_names"]), {
        environment: set(names) for environment, names in github["environment_variable_names"].items()}
