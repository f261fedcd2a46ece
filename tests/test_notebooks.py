"""Execute every notebook in notebooks/ (jupytext percent .py files) with small settings.

The notebooks read ``RETROSIM_NOTEBOOK_FAST=1`` and then use few posterior draws and a coarse grid;
their results go to a temporary folder (``RETROSIM_RESULTS``), never into the repository.
The notebooks are stored without outputs (percent-format .py), so this test is what proves they run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
TIMEOUT_S = 300


def test_there_are_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert len(names) >= 3, names


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    nb = jupytext.read(path)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    monkeypatch.setenv("RETROSIM_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("RETROSIM_RESULTS", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    client = nbclient.NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
