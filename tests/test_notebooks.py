"""The notebooks in notebooks/: committed without outputs, and each runs top to bottom.

Execution uses SIGNOISE_QUICK=1 (each notebook's first cell shrinks its sizes), so the whole
set runs in the README's test command; a notebook that raises fails its test.
"""
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 6, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    """The nbstripout rule: no outputs, no execution counts in git."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert dirty == [], f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path, monkeypatch, tmp_path):
    """Execute in a fresh kernel at the QUICK size; the first cell must read SIGNOISE_QUICK."""
    import nbclient  # the test extra installs nbclient and ipykernel: a missing one fails
    import nbformat

    nb = nbformat.read(path, as_version=4)
    assert 'os.environ.get("SIGNOISE_QUICK") == "1"' in nb.cells[1].source
    monkeypatch.setenv("SIGNOISE_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")   # the kernel's choice, not the notebook's
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
              if o.output_type == "error"]
    assert errors == []
