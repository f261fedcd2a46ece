"""Where retrosim finds its shipped data and writes results.

``RETROSIM_RESULTS`` overrides the results folder (default ``results/`` at the
repository root, or in the working directory for an installed package).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DATA_DIR = Path(os.environ.get("RETROSIM_DATA", REPO_ROOT / "data"))


def results_dir(create: bool = True) -> Path:
    """Return the results folder, creating it if asked."""
    default = REPO_ROOT / "results" if (REPO_ROOT / "pyproject.toml").exists() else Path("results")
    path = Path(os.environ.get("RETROSIM_RESULTS", default))
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
