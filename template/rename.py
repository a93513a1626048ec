"""Rename a fresh copy of this template to the names its user chose.

Copier copies the template's files unchanged, then runs this script in the new project's folder
(`copier.yml`, `_tasks`). It rewrites the template's names (`template/names.json`) to the answers in
every file and path the template has, and nowhere else: during `copier update`, Copier copies the
template's new version over the fork and runs this again, and the fork's own files must stay as they are.

Standard library only: it runs in Copier's interpreter, before the project has an environment.

    python template/rename.py --template=<template folder> package_name=acme_ml project_name=acme-ml ...
"""

import argparse
import ast
import json
import os
import re
import sys
from pathlib import Path
from pprint import pformat

FIELDS = ("project_name", "package_name", "catalog_prefix", "schema", "model_name", "azure_region",
          "github_owner", "github_repo")
ENVIRONMENTS = ("dev", "staging", "prod", "<env>", "{name}", "{env}")
MODULE_INDEX = "_modidx.py"  # nbdev's index of the package; rewritten the way nbdev writes it
# The page and the decision about the template itself: kept word for word, they name dbxml in every fork.
KEEP = {"nbs/platform/template.md", "nbs/decisions/0020-copier-template.md"}


def camel_case(package: str) -> str:
    "`acme_ml` -> `AcmeMl`: the package name as it begins a class name (`DbxmlError`)."
    return "".join(part.capitalize() for part in package.split("_"))


def substitutions(old: dict, new: dict) -> list[tuple[str, str]]:
    "The (pattern, replacement) pairs from `old` names to `new`, most specific first."
    esc = {field: re.escape(value) for field, value in old.items()}
    catalogs = "|".join(re.escape(env) for env in ENVIRONMENTS)
    # the schema as a whole name part, not a word's start (`flights_x`); a backslash: a quote escaped in a notebook
    schema_after = r"(?=[.`'\"\\\s/)]|$)"
    pairs = [
        # the repository and its docs site
        (rf"github\.com/{esc['github_owner']}/{esc['github_repo']}\b", f"github.com/{new['github_owner']}/{new['github_repo']}"),
        (rf"\b{esc['github_owner']}\.github\.io\b", f"{new['github_owner']}.github.io"),
        (rf"^user = {esc['github_owner']}$", f"user = {new['github_owner']}"),
        (rf"^repo = {esc['github_repo']}$", f"repo = {new['github_repo']}"),
        (rf"'doc_baseurl': '/{esc['github_repo']}'", f"'doc_baseurl': '/{new['github_repo']}'"),
        # catalogs, with the schema when it follows (`dbxml_prod.flights.gold_features`)
        (rf"\b{esc['catalog_prefix']}_({catalogs})\.{esc['schema']}{schema_after}", None),
        (rf"\b{esc['catalog_prefix']}_({catalogs})", None),
        # the schema where it is the schema: in configuration, volumes, three-part names and prose
        (rf"\bschema( *)=( *)\\?\"{esc['schema']}\\?\"", None),
        (rf"^(\s*default:\s*){esc['schema']}$", None),  # databricks.yml's variable
        (rf"^(\s*default\s*=\s*)\"{esc['schema']}\"$", None),  # Terraform's variable
        (rf"/{esc['schema']}/raw\b", f"/{new['schema']}/raw"),
        (rf"\blocal\.{esc['schema']}{schema_after}", f"local.{new['schema']}"),
        (rf"\blocal__{esc['schema']}{schema_after}", f"local__{new['schema']}"),  # the local catalog's database
        (rf"\bschema: {esc['schema']}{schema_after}", f"schema: {new['schema']}"),  # `dbxml info`'s output
        (rf"schema `{esc['schema']}`", f"schema `{new['schema']}`"),
        (rf"`{esc['schema']}` schema", f"`{new['schema']}` schema"),
        # the model (also in its experiment's and tables' names), the region
        (esc["model_name"], new["model_name"]),
        (esc["azure_region"], new["azure_region"]),
        # the package and project in their spellings
        (rf"{re.escape(old['package_name'].upper())}", new["package_name"].upper()),
        (rf"{re.escape(camel_case(old['package_name']))}", camel_case(new["package_name"])),
        (rf"{re.escape(camel_case(old['package_name']).lower())}error", f"{camel_case(new['package_name']).lower()}error"),
        (rf"{esc['package_name']}(?=-\d)", new["package_name"]),  # a wheel's or sdist's name: `dbxml-0.1.0-py3-...`
        (rf"{esc['project_name']}(?=-)|(?<=-){esc['project_name']}\b", new["project_name"]),
        (rf"{esc['project_name']}(?=[a-z0-9])", new["project_name"].replace("-", "")),
        (esc["package_name"], new["package_name"]),
    ]
    return pairs


def renamer(old: dict, new: dict):
    "A function from text to text that makes every substitution in one pass (no name is renamed twice)."
    pairs = substitutions(old, new)
    combined = re.compile("|".join(f"(?P<r{index}>{pattern})" for index, (pattern, _) in enumerate(pairs)), re.MULTILINE)

    def replace(match: re.Match) -> str:
        index = int(match.lastgroup[1:])
        text, replacement = match.group(0), pairs[index][1]
        if replacement is not None:
            return replacement
        # patterns with the schema or a catalog inside: rename each part
        text = re.sub(rf"\b{re.escape(old['catalog_prefix'])}_", f"{new['catalog_prefix']}_", text)
        return re.sub(rf"(?<=[.\"\s]){re.escape(old['schema'])}\b", new["schema"], text)

    return lambda text: combined.sub(replace, text)


def template_files(template: Path) -> list[Path]:
    "Every file of the template, relative to its folder (Git's own folder left out)."
    found = []
    for folder, subfolders, files in os.walk(template):
        subfolders[:] = [name for name in subfolders if name != ".git"]
        found += [Path(folder, name).relative_to(template) for name in files]
    return sorted(found)


def rename_file(project: Path, relative: Path, rename) -> Path | None:
    "Move `relative` to its renamed path in `project` and rename the names in its text; the new path."
    source = project / relative
    if not source.is_file() or source.is_symlink() or relative.as_posix() in KEEP:
        return None  # excluded by copier.yml, or not the template's to rename
    target = project / rename(relative.as_posix())
    if target != source:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    try:
        text = target.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return target  # binary: copied as it is
    renamed = rename(text)
    if target.name == MODULE_INDEX:  # nbdev aligns its index by the names' lengths: write it as nbdev does
        index = ast.literal_eval(renamed.split("d = ", 1)[1])
        renamed = "# Autogenerated by nbdev\n\nd = " + pformat(index, width=140, indent=2, compact=True) + "\n"
    if renamed != text:
        target.write_text(renamed, encoding="utf-8")
    return target


def remove_empty_folders(project: Path, relatives: list[Path]):
    "Remove the folders the renamed files left empty (the old package folder)."
    for folder in sorted({parent for relative in relatives for parent in relative.parents}, key=lambda p: -len(p.parts)):
        path = project / folder
        if folder != Path(".") and path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def rename_project(project: Path, template: Path, new: dict) -> list[Path]:
    "Rename the copy of `template` in `project` from the template's names to `new`; the files renamed."
    old = json.loads((template / "template" / "names.json").read_text())
    missing = [field for field in FIELDS if not new.get(field)]
    if missing:
        raise SystemExit(f"rename.py: no answer for {', '.join(missing)}")
    rename = renamer(old, new) if old != new else (lambda text: text)
    relatives = template_files(template)
    done = [path for path in (rename_file(project, relative, rename) for relative in relatives) if path]
    remove_empty_folders(project, relatives)
    return done


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True, help="the template's folder, as Copier copied it")
    parser.add_argument("answers", nargs="+", help="field=value for every field of template/names.json")
    args = parser.parse_args(argv)
    new = dict(answer.split("=", 1) for answer in args.answers)
    rename_project(Path.cwd(), args.template, new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
