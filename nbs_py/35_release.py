# %% [markdown]
# # Releases
# > Semantic versions, a changelog written from the changes merged since the last release,
# > and the check the release workflow makes of a tag.
#
# A release of dbxml is a tag `vX.Y.Z` on `main`. Forks take releases with `copier update`
# (the platform page "Make it yours, keep it current"), and prod deploys them
# (`deploy-prod.yml`).

# %% [markdown]
# A release is made in two steps:
#
# 1. `dbxml release --part 1` on a branch bumps the version and writes the release's section of
#    `CHANGELOG.md` from the changes merged since the last tag. A person reads it, edits it if
#    needed, and merges the pull request.
# 2. A maintainer tags the merge `vX.Y.Z`. `release.yml` checks that the tag matches
#    the version and that the changelog has the section, then builds the wheel and publishes the
#    GitHub release with the section as its notes. `docs.yml` publishes the site for the tag.

# %%
#| default_exp release

# %%
#| export
from __future__ import annotations

import re
import subprocess
from datetime import date
from pathlib import Path

from dbxml.config import DbxmlError

# %%
#| hide
import shutil
import tempfile

from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## Versions
#
# The version is written in two places: `settings.ini`, which nbdev and `setup.py` read, and the
# package's `__init__.py`, where nbdev puts it (`put_version_in_init`). The parts are numbered
# as nbdev's `nbdev_bump_version` numbers them: 0 is major, 1 is minor, 2 is patch.
# `nbdev_bump_version` itself rewrites `settings.ini` through `configparser`, which drops the
# file's comments, so the release edits the one line.

# %%
#| export
VERSION_LINE = re.compile(r"^version = (\d+\.\d+\.\d+)$", re.MULTILINE)

def project_version(root: Path | str = ".",  # the repository
                   ) -> str:
    "The version in `root`'s `settings.ini`."
    found = VERSION_LINE.search((Path(root) / "settings.ini").read_text())
    if not found:
        raise DbxmlError("settings.ini has no `version = X.Y.Z` line.")
    return found.group(1)


# %%
test_eq(re.fullmatch(r"\d+\.\d+\.\d+", project_version("..")) is not None, True)


# %%
#| export
def next_version(version: str,  # `X.Y.Z`
                 part: int,  # 0 major, 1 minor, 2 patch
                ) -> str:
    "`version` with `part` raised by one and the parts after it set to zero."
    if part not in (0, 1, 2):
        raise DbxmlError(f"part must be 0 (major), 1 (minor) or 2 (patch), not {part}.")
    numbers = [int(number) for number in version.split(".")]
    numbers[part] += 1
    numbers[part + 1:] = [0] * (2 - part)
    return ".".join(map(str, numbers))


# %%
test_eq(next_version("0.1.9", 2), "0.1.10")
test_eq(next_version("0.1.9", 1), "0.2.0")
test_eq(next_version("0.1.9", 0), "1.0.0")
test_fail(lambda: next_version("0.1.9", 3), contains="part must be")


# %%
#| export
def set_version(root: Path | str,  # the repository
                version: str,  # the new `X.Y.Z`
               ):
    "Write `version` into `settings.ini` and the package's `__init__.py`, leaving every other line as it was."
    settings = Path(root) / "settings.ini"
    text = settings.read_text()
    settings.write_text(VERSION_LINE.sub(f"version = {version}", text, count=1))
    package = re.search(r"^lib_path = (\S+)$", text, re.MULTILINE).group(1)
    init = Path(root) / package / "__init__.py"
    init.write_text(re.sub(r'^__version__ = ".*"$', f'__version__ = "{version}"', init.read_text(), flags=re.MULTILINE))


# %% [markdown]
# ## The changes merged since the last release
#
# On `main`'s first-parent line, each commit is one merged change. A squash merge's subject is
# the pull request's title. A merge commit's subject is "Merge pull request #N from ...", and
# GitHub puts the title on the first line of its body, so that line is used instead.

# %%
#| export
def _git(root: Path | str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def last_release(root: Path | str = ".",  # the repository
                ) -> str | None:
    "The newest `vX.Y.Z` tag reachable from `HEAD`; `None` before the first release."
    found = _git(root, "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*")
    return found.stdout.strip() if found.returncode == 0 else None


def merged_changes(root: Path | str = ".",  # the repository
                   since: str | None = None,  # a tag; `None` for the whole history
                  ) -> list[str]:
    "One line per change merged on `HEAD`'s first-parent line since `since`, oldest first."
    span = f"{since}..HEAD" if since else "HEAD"
    log = _git(root, "log", "--first-parent", "--reverse", "--format=%s%x1f%b%x1e", span)
    if log.returncode != 0:
        raise DbxmlError(f"git log {span} failed: {log.stderr.strip()}")
    changes = []
    for entry in filter(str.strip, log.stdout.split("\x1e")):
        subject, body = entry.strip("\n").split("\x1f")
        if subject.startswith("Merge pull request") and body.strip():
            subject = body.strip().splitlines()[0]
        changes.append(subject.strip())
    return changes


# %% [markdown]
# An example repository: two changes, the release `v0.1.0`, then a squash-merged change and a
# merged pull request.

# %%
def commit(root, message, *extra):
    with (Path(root) / "changes.txt").open("a") as changes:
        changes.write(message + "\n")
    _git(root, "add", "-A")
    return _git(root, "-c", "user.name=dbxml", "-c", "user.email=dbxml@example.org", "commit", "-q", *extra, "-m", message)


example = Path(tempfile.mkdtemp())
_git(example, "init", "-q", "-b", "main")
(example / "pkg").mkdir()
(example / "pkg" / "__init__.py").write_text('__version__ = "0.1.0"\n')
(example / "settings.ini").write_text("[DEFAULT]\n# the package\nlib_path = pkg\nversion = 0.1.0\n")
commit(example, "Bronze keeps every byte")
commit(example, "Silver quarantines bad rows")
_git(example, "tag", "v0.1.0")
commit(example, "Scoring reads the champion by alias (#6)")
_git(example, "checkout", "-q", "-b", "feature")
commit(example, "A faster monitor")
_git(example, "checkout", "-q", "main")
_git(example, "-c", "user.name=dbxml", "-c", "user.email=dbxml@example.org", "merge", "-q", "--no-ff", "feature",
     "-m", "Merge pull request #7 from team/feature", "-m", "The monitor counts in one pass")
test_eq(last_release(example), "v0.1.0")
test_eq(merged_changes(example, "v0.1.0"), ["Scoring reads the champion by alias (#6)", "The monitor counts in one pass"])
test_eq(len(merged_changes(example)), 4)


# %% [markdown]
# ## The changelog
#
# `CHANGELOG.md` has a short preamble, then one section per release, the newest first.

# %%
#| export
def changelog_section(version: str,  # `X.Y.Z`
                      changes: list[str],  # one line per merged change
                      day: date,  # the release's date
                     ) -> str:
    "The changelog's section for `version`."
    lines = [f"- {change}" for change in changes] or ["- No changes merged since the last release."]
    return "\n".join([f"## {version} ({day.isoformat()})", "", *lines]) + "\n"


def add_section(changelog: str,  # the changelog's text
                section: str,  # a section from `changelog_section`
               ) -> str:
    "`changelog` with `section` as its newest release; a `DbxmlError` if that version already has one."
    heading = section.splitlines()[0].split(" (")[0]
    if re.search(rf"^{re.escape(heading)}( |$)", changelog, re.MULTILINE):
        raise DbxmlError(f"CHANGELOG.md already has a section `{heading}`.")
    first = re.search(r"^## ", changelog, re.MULTILINE)
    at = first.start() if first else len(changelog)
    return changelog[:at].rstrip("\n") + "\n\n" + section + ("\n" + changelog[at:] if first else "")


def release_notes(changelog: str,  # the changelog's text
                  version: str,  # `X.Y.Z`
                 ) -> str:
    "The body of `version`'s section: what the GitHub release shows."
    found = re.search(rf"^## {re.escape(version)}( [^\n]*)?\n(.*?)(?=^## |\Z)", changelog, re.MULTILINE | re.DOTALL)
    if not found:
        raise DbxmlError(f"CHANGELOG.md has no section for {version}: run `dbxml release` before tagging.")
    return found.group(2).strip() + "\n"


# %%
preamble = "# Changelog\n\nEvery release, newest first.\n"
first = add_section(preamble, changelog_section("0.1.0", ["Bronze keeps every byte"], date(2026, 11, 1)))
second = add_section(first, changelog_section("0.2.0", ["A faster monitor"], date(2026, 12, 1)))
print(second)
test_eq(second.index("## 0.2.0") < second.index("## 0.1.0"), True)
test_eq(release_notes(second, "0.1.0"), "- Bronze keeps every byte\n")
test_fail(lambda: add_section(second, changelog_section("0.2.0", [], date(2026, 12, 2))), contains="already has")
test_fail(lambda: release_notes(second, "0.3.0"), contains="no section for 0.3.0")


# %% [markdown]
# ## Preparing a release, and checking its tag

# %%
#| export
def prepare_release(root: Path | str = ".",  # the repository
                    part: int = 2,  # 0 major, 1 minor, 2 patch
                    day: date | None = None,  # the release's date (default: today)
                   ) -> str:
    "Bump the version and add its changelog section, written from the changes merged since the last release."
    root = Path(root)
    version = next_version(project_version(root), part)
    changelog = root / "CHANGELOG.md"
    text = changelog.read_text() if changelog.exists() else "# Changelog\n"
    changes = merged_changes(root, last_release(root))
    changelog.write_text(add_section(text, changelog_section(version, changes, day or date.today())))
    set_version(root, version)
    return version


def check_release(root: Path | str,  # the repository, checked out at the tag
                  tag: str,  # the pushed tag, e.g. `v0.2.0`
                 ) -> str:
    "The release notes for `tag`; a `DbxmlError` unless `tag` is `v` + the version and the changelog has its section."
    version = project_version(root)
    if tag != f"v{version}":
        raise DbxmlError(f"tag {tag} does not match settings.ini's version {version} (expected v{version}).")
    changelog = Path(root) / "CHANGELOG.md"
    return release_notes(changelog.read_text() if changelog.exists() else "", version)


# %% [markdown]
# In the example repository, the minor release after `v0.1.0` is 0.2.0, and its section holds the
# two changes merged since. The settings file keeps its comment.

# %%
test_eq(prepare_release(example, part=1, day=date(2026, 12, 1)), "0.2.0")
test_eq((example / "settings.ini").read_text(), "[DEFAULT]\n# the package\nlib_path = pkg\nversion = 0.2.0\n")
test_eq((example / "pkg" / "__init__.py").read_text(), '__version__ = "0.2.0"\n')
print((example / "CHANGELOG.md").read_text())
test_eq(check_release(example, "v0.2.0"),
        "- Scoring reads the champion by alias (#6)\n- The monitor counts in one pass\n")
test_fail(lambda: check_release(example, "v0.2.1"), contains="does not match")
shutil.rmtree(example)
