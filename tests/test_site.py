"""The documentation site, built as `make docs` builds it (nbdev_docs and the real Quarto) and read as a reader
would: every notebook and page has its HTML page, no internal link or image is broken, the sidebar reaches
every page, and search finds a function by name. Each check is shown to catch a broken copy of the site."""
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import BIN, ROOT

from dbxml.hygiene import copy_repository

WITH_QUARTO = ROOT / ".ci" / "with-quarto"
QUARTO_INSTALLER = ROOT.parent / "shared" / "tools" / "quarto" / "install-quarto.sh"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The site of a copy of this working tree, rendered by `.ci/with-quarto nbdev_docs` (what `make docs` runs)."
    if shutil.which("quarto") is None and not QUARTO_INSTALLER.exists():
        pytest.skip(f"no quarto on PATH and no {QUARTO_INSTALLER} to install it")
    repo = copy_repository(ROOT, tmp_path_factory.mktemp("site") / "repo")
    built = subprocess.run([str(WITH_QUARTO), str(BIN / "nbdev_docs")], cwd=repo, capture_output=True, text=True,
                           timeout=1800)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return repo / "docs"


class Page(HTMLParser):
    "The links, images, element ids and sidebar links of one HTML page."

    def __init__(self):
        super().__init__()
        self.links, self.ids, self.sidebar, self.headings = [], set(), [], []
        self.in_sidebar = 0  # depth inside the sidebar's <nav>
        self.heading = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "nav" and attributes.get("id") == "quarto-sidebar":
            self.in_sidebar = 1
        elif tag == "nav" and self.in_sidebar:
            self.in_sidebar += 1
        reference = attributes.get("href") if tag in ("a", "link") else attributes.get("src") \
            if tag in ("img", "script") else None
        if reference:
            self.links.append(reference)
            if tag == "a" and self.in_sidebar:
                self.sidebar.append(reference)
        if tag == "h1":
            self.heading = ""

    def handle_endtag(self, tag):
        if tag == "nav" and self.in_sidebar:
            self.in_sidebar -= 1
        if tag == "h1" and self.heading is not None:
            self.headings.append(self.heading.strip())
            self.heading = None

    def handle_data(self, data):
        if self.heading is not None:
            self.heading += data


def read_page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def html_pages(site: Path) -> list[Path]:
    return sorted(path for path in site.rglob("*.html") if "site_libs" not in path.parts)


def expected_pages() -> set[str]:
    "The HTML page each notebook and Markdown page of nbs/ becomes (nbdev drops a notebook's number prefix)."
    nbs = ROOT / "nbs"
    sources = [path for path in nbs.rglob("*") if path.suffix in (".ipynb", ".md")
               and not any(part.startswith((".", "_")) for part in path.relative_to(nbs).parts)]
    return {str(path.relative_to(nbs).with_name(re.sub(r"^\d+_", "", path.stem) + ".html")) for path in sources}


def broken_links(site: Path) -> list[str]:
    "Every internal link, image or script of the site whose file (or #anchor) does not exist."
    pages = {path: read_page(path) for path in html_pages(site)}
    broken = []
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith(("//", "mailto:")):
                continue  # an external link: not this site's to check here
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{path.relative_to(site)}: {link}")
            elif parts.fragment and target.suffix == ".html" and target in pages and \
                    unquote(parts.fragment) not in pages[target].ids:
                broken.append(f"{path.relative_to(site)}: {link} (no such anchor)")
    return broken


def unreachable_from_sidebar(site: Path) -> set[str]:
    "The pages no sidebar link of the home page leads to."
    sidebar = {str((site / unquote(urlsplit(link).path)).resolve().relative_to(site.resolve()))
               for link in read_page(site / "index.html").sidebar if not urlsplit(link).scheme}
    return {str(path.relative_to(site)) for path in html_pages(site)} - sidebar - {"404.html"}


def test_every_notebook_and_page_has_its_html_page(site):
    built = {str(path.relative_to(site)) for path in html_pages(site)}
    assert expected_pages() - built == set()
    assert len(built) >= 50
    print(f"{len(built)} pages")


def test_no_internal_link_or_image_is_broken(site, tmp_path):
    assert broken_links(site) == []
    # and the check catches a broken one
    copy = shutil.copytree(site, tmp_path / "docs")
    page = copy / "watermark.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</body>", '<a href="no-such-page.html#x">x</a>'
                                                              '<img src="missing.png"></body>'), encoding="utf-8")
    assert broken_links(copy) == ["watermark.html: no-such-page.html#x", "watermark.html: missing.png"]


def test_the_sidebar_reaches_every_page(site, tmp_path):
    assert unreachable_from_sidebar(site) == set()
    copy = shutil.copytree(site, tmp_path / "docs")
    (copy / "orphan.html").write_text("<html><body><h1>orphan</h1></body></html>")
    assert unreachable_from_sidebar(copy) == {"orphan.html"}


def test_search_finds_a_function_by_name_on_its_page(site):
    entries = json.loads((site / "search.json").read_text())
    found = {entry["href"].split("#")[0] for entry in entries if "resolve_month" in entry["title"] + entry["text"]}
    assert "watermark.html" in found, sorted(found)
    assert not [entry for entry in entries if "no_such_function_anywhere" in entry["title"] + entry["text"]]


def test_each_page_is_titled_as_its_source_says(site):
    assert read_page(site / "watermark.html").headings[0] == "The watermark"
    assert read_page(site / "decisions" / "0016-scheduled-month.html").headings[0].startswith("ADR 0016")
    assert read_page(site / "pipelines" / "record_month.html").headings[0] == "Record-month task"
