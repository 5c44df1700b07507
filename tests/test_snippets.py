"""Every ```python block of the README and the manual runs as written (issue 12).

A page's blocks run in order in one namespace, from the repository root, at the sizes they
show; a block preceded by ``<!-- no-test -->`` is skipped (it needs a GPU, a Dask cluster or
minutes of work, and says so).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"(<!-- no-test -->\s*\n)?```python\n(.*?)```", re.S)


def blocks(page):
    return [code for skip, code in BLOCK.findall(page.read_text(encoding="utf-8")) if not skip]


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_snippets_run_as_written(page, monkeypatch, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(ROOT)
    namespace = {"__name__": "snippet"}
    for code in blocks(page):
        # the pages write to /tmp; each test gets its own folder instead, so that a store left
        # by an earlier run (of another version) is never resumed here
        code = code.replace("/tmp/", f"{tmp_path}/")
        exec(compile(code, f"{page.name} snippet", "exec"), namespace)
