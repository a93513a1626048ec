"""The documentation site, built as `make docs` builds it (nbdev_docs and the real Quarto) and read as a reader
would: every notebook and page has its HTML page, no internal link or image is broken, the sidebar reaches
every page, and search finds a function by name. Each check is shown to catch a broken copy of the site.
Then a real browser (headless Chromium) renders five pages; the screenshots are kept in build/site-screenshots/
(CI uploads them as an artifact) and must be neither blank nor missing the page's heading."""
import functools
import json
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import BIN, ROOT
from PIL import Image, ImageStat

from dbxml.hygiene import copy_repository

pytestmark = pytest.mark.slow  # renders the whole site with Quarto and opens it in Chromium

QUARTO_INSTALLER = ROOT.parent / "shared" / "tools" / "quarto" / "install-quarto.sh"
SCREENSHOTS = ROOT / "build" / "site-screenshots"
# Debian's package (what .ci/run installs) or the Chrome that GitHub's runners ship
BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The site of a copy of this working tree, rendered by `.ci/build-docs` (what `make docs` runs)."
    if shutil.which("quarto") is None and not QUARTO_INSTALLER.exists():
        pytest.skip(f"no quarto on PATH and no {QUARTO_INSTALLER} to install it")
    repo = copy_repository(ROOT, tmp_path_factory.mktemp("site") / "repo")
    built = subprocess.run([str(ROOT / ".ci" / "build-docs"), str(BIN)], cwd=repo, capture_output=True, text=True,
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


# The pages a reader meets first, each with the heading the browser must show.
PAGES_TO_SEE = {
    "home": ("index.html", "dbxml"),
    "library": ("watermark.html", "The watermark"),
    "pipeline": ("pipelines/record_month.html", "Record-month task"),
    "decision": ("decisions/0016-scheduled-month.html", "ADR 0016"),
    "architecture": ("platform/architecture.html", "Architecture"),
}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # a request log line per file would bury the test's output
        pass


@pytest.fixture(scope="module")
def served_site(site):
    "The built site over HTTP on localhost, as a browser reads it (search and scripts do not work from file://)."
    handler = functools.partial(QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def browse(*args: str) -> str:
    "Run headless Chromium with `args`; return what it printed on stdout."
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--window-size=1280,900", "--virtual-time-budget=5000", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def looks_blank(screenshot: Path) -> bool:
    "True when a screenshot is (nearly) one colour: a page that did not render."
    image = Image.open(screenshot).convert("L")
    return max(ImageStat.Stat(image).stddev) < 8 or len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) < 4


@pytest.mark.skipif(BROWSER is None, reason="no chromium, chromium-browser or google-chrome on PATH "
                                              "(.ci/run installs Debian's chromium when it runs as root)")
@pytest.mark.parametrize("name", PAGES_TO_SEE)
def test_a_browser_renders_the_page_with_its_heading(served_site, name):
    page, heading = PAGES_TO_SEE[name]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / f"{name}.png"
    screenshot.unlink(missing_ok=True)
    browse(f"--screenshot={screenshot}", f"{served_site}/{page}")
    assert screenshot.stat().st_size > 10_000 and not looks_blank(screenshot), screenshot
    rendered = read_page_text(browse("--dump-dom", f"{served_site}/{page}"))
    assert rendered.headings[0].startswith(heading), rendered.headings
    assert len(rendered.sidebar) >= 50  # the sidebar came with the page
    if name == "architecture":  # Mermaid ran in the browser: the generated diagrams are drawings now
        assert rendered.svg_count >= 3  # every page has one icon; the page has two diagrams


@pytest.mark.skipif(BROWSER is None, reason="no browser on PATH")
def test_a_blank_page_counts_as_blank(tmp_path):
    (tmp_path / "blank.html").write_text("<html><body></body></html>")
    screenshot = tmp_path / "blank.png"
    browse(f"--screenshot={screenshot}", (tmp_path / "blank.html").as_uri())
    assert looks_blank(screenshot)


def read_page_text(html: str) -> Page:
    "A `Page` of HTML text (a browser's rendered DOM), counting its inline SVG drawings too."
    page = Page()
    page.feed(html)
    page.svg_count = html.count("<svg")
    return page


def test_pages_show_the_committed_results(site):
    "What `make results` committed reaches the pages (nbs/decisions/0017-results-on-the-pages.md)."
    silver = (site / "silver.html").read_text(encoding="utf-8")
    assert re.search(r"<td>cancelled_consistently</td>\s*<td>cancelled_consistently: dep_time=NA", silver)
    assert "<td>EWR</td>" in (site / "gold.html").read_text(encoding="utf-8")  # January's mart
    for page in ("gold.html", "train.html", "monitor.html"):  # the year's on-time chart, ROC and calibration, drift
        figures = [link for link in read_page(site / page).links if link.endswith(".png")]
        assert figures and all((site / link).is_file() for link in figures), (page, figures)
