"""The manual's sources: links resolve, every figure is in the gallery, the README stays a tour.

The strict MkDocs build (CI, after the tests) checks links inside docs/ as the site sees them;
these tests check what GitHub shows (README.md and docs/*.md read as files) and need no MkDocs.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _targets(path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [t.split("#")[0] for t in LINK.findall(text)
            if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("path", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_relative_links_resolve(path):
    missing = [t for t in _targets(path) if not (path.parent / t).exists()]
    assert missing == [], f"{path.name} links to missing files: {missing}"


def test_link_checker_catches_a_missing_file(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md) and [broken](nowhere.md)\n```\n[in code](x.md)\n```\n")
    assert [t for t in _targets(page) if not (tmp_path / t).exists()] == ["nowhere.md"]


def test_gallery_shows_every_committed_figure():
    gallery = (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"!\[[^\]]*\]\(figures/([^)]+)\)", gallery))
    committed = {p.name for p in (ROOT / "figures").iterdir() if p.suffix in (".png", ".gif")}
    assert committed - shown == set(), "figures missing from docs/gallery.md"
    assert shown - committed == set(), "docs/gallery.md shows figures that do not exist"


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    live = "\n".join(line for line in nav.splitlines() if not line.lstrip().startswith("#"))
    assert [p.name for p in PAGES if p.name not in live] == []


def test_readme_is_a_short_tour_with_the_ci_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme) < 8000
    assert ('pip install . && signoise demo -o demo.png' in readme)
    test_command = 'pip install ".[test]" && python -m pytest -q'
    assert test_command in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "\npython -m pytest -q\n" in ci and "mkdocs build --strict" in ci
