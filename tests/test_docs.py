"""The documentation site: Quarto cannot be installed here, so these tests run nbdev's
preprocessing (everything before Quarto's render) and check what the site is made of."""
import os

from conftest import ROOT, run_tool

from dbxml.hygiene import repository_notebooks


def test_nbdev_preprocesses_every_notebook_for_the_site(repo_copy, tmp_path):
    # Without Quarto on PATH, nbdev tries to download it and then runs `pip install -e` on
    # the copy, which would repoint this environment's dbxml at it. A stand-in that only
    # exists (and fails if called) keeps nbdev to its preprocessing.
    stand_in = tmp_path / "bin" / "quarto"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\necho 'quarto cannot be installed on this machine' >&2\nexit 1\n")
    stand_in.chmod(0o755)
    env = {**os.environ, "PATH": f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}"}
    result = run_tool("nbdev_proc_nbs", cwd=repo_copy, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # a title cell's "- key: value" lines are read as front matter; prose there breaks the page header
    assert "Failed to create YAML dict" not in result.stderr, result.stderr[-3000:]
    processed = repo_copy / "_proc"
    for notebook in repository_notebooks(repo_copy):
        assert (processed / notebook.relative_to(repo_copy / "nbs")).is_file(), notebook
    assert sorted(path.name for path in (processed / "decisions").glob("*.md"))  # the ADR pages
    # show_doc rendered the exported API into the processed notebook
    assert "get_spark" in (processed / "01_spark.ipynb").read_text()


def test_the_sidebar_lists_every_library_notebook(repo_copy):
    sidebar = (repo_copy / "nbs" / "sidebar.yml").read_text()
    for notebook in repository_notebooks(repo_copy):
        assert notebook.name in sidebar, f"{notebook.name} is missing from nbs/sidebar.yml"


def test_the_sidebar_lists_every_platform_page():
    sidebar = (ROOT / "nbs" / "sidebar.yml").read_text()
    pages = sorted((ROOT / "nbs" / "platform").glob("*.md"))
    assert {page.name for page in pages} >= {"delivery.md", "governance.md"}
    for page in pages:
        assert f"platform/{page.name}" in sidebar, f"{page.name} is missing from nbs/sidebar.yml"
        assert page.read_text().startswith("---\ntitle: "), f"{page.name} has no title front matter"
