"""The architecture page (nbs/platform/architecture.md): arc42's twelve sections, every ADR linked, and diagrams
that are what `dbxml.diagrams` generates from the code right now."""
import re

from conftest import ROOT

from dbxml.diagrams import PAGE, write_diagrams
from dbxml.hygiene import git

ARC42 = ["Introduction and goals", "Constraints", "Context and scope", "Solution strategy", "Building block view",
         "Runtime view", "Deployment view", "Cross-cutting concepts", "Architecture decisions",
         "Quality requirements", "Risks and technical debt", "Glossary"]


def headings(text):
    "The page's `##` headings, outside fenced code."
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.findall(r"^## (.+)$", text, flags=re.MULTILINE)


def section(text, number):
    "The text of arc42 section `number`, from its heading to the next `##` heading."
    found = re.search(rf"^## {number} .*?(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert found, f"no section {number} in {PAGE}"
    return found.group(0)


def test_the_page_has_arc42s_twelve_sections_in_order():
    assert headings((ROOT / PAGE).read_text()) == [f"{number} {title}" for number, title in enumerate(ARC42, 1)]


def test_section_9_links_every_decision_record():
    decisions = section((ROOT / PAGE).read_text(), 9)
    records = sorted((ROOT / "nbs" / "decisions").glob("*.md"))
    assert records
    missing = [record.name for record in records if f"](../decisions/{record.name})" not in decisions]
    assert not missing, f"section 9 of {PAGE} does not link {missing}"


def test_the_committed_diagrams_are_what_the_code_generates_now(repo_copy):
    assert write_diagrams(repo_copy) == [], f"{PAGE} is stale: run dbxml.diagrams.write_diagrams and commit it"
    assert git("status", "--porcelain", cwd=repo_copy) == ""


def test_a_new_task_in_the_job_file_changes_the_job_graph(repo_copy):
    job_file = repo_copy / "resources" / "monthly_job.yml"
    with job_file.open("a") as tasks:  # `tasks` is the last key of the job: append one more
        tasks.write("\n        - task_key: publish_report\n"
                    "          depends_on:\n            - task_key: record_month\n"
                    "          run_if: ALL_DONE\n"
                    "          notebook_task:\n            notebook_path: ../nbs/pipelines/record_month.ipynb\n")
    assert write_diagrams(repo_copy) == [repo_copy / PAGE]
    page = (repo_copy / PAGE).read_text()
    assert 'task_publish_report["publish_report<br/>run_if: ALL_DONE"]' in page
    assert "task_record_month --> task_publish_report" in page
    assert f" M {PAGE}" in git("status", "--porcelain", cwd=repo_copy).splitlines()


def test_a_new_import_changes_the_module_graph(repo_copy):
    (repo_copy / "dbxml" / "audit.py").write_text(
        "from .config import Target\n\n\ndef audit():\n    from dbxml.registry import champion_history\n")
    (repo_copy / "dbxml" / "config.py").write_text(
        (repo_copy / "dbxml" / "config.py").read_text() + "\n\ndef later():\n    import dbxml.watermark\n")
    assert write_diagrams(repo_copy) == [repo_copy / PAGE]
    page = (repo_copy / PAGE).read_text()
    assert "module_audit --> module_config" in page
    assert "module_audit -.-> module_registry" in page
    assert "module_config -.-> module_watermark" in page
