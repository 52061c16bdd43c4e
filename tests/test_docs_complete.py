"""The configuration page documents every setting the service reads, so docs cannot drift from settings.py."""

from __future__ import annotations

from pathlib import Path

from settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_environment_variable_is_documented():
    page = (DOCS / "configuration.md").read_text()
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in page]
    assert not missing, f"add these to docs/configuration.md: {missing}"


def test_every_docs_page_is_reachable_from_the_readme():
    readme = (DOCS.parent / "README.md").read_text()
    orphans = [p.name for p in DOCS.glob("*.md") if f"docs/{p.name}" not in readme]
    assert not orphans, f"link these from the README's documentation table: {orphans}"
