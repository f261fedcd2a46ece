"""Configuration: the one place where retrosim reads its ``RETROSIM_*`` environment variables.

==========================  ================================================================
variable                    meaning (default)
==========================  ================================================================
``RETROSIM_DATA``           folder with the evidence tables and model parameters (the data
                            shipped inside the package, ``retrosim/data``)
``RETROSIM_RESULTS``        folder results are written to (``results/`` in the
                            current working directory; ``results/`` of the checkout when run
                            from a source checkout)
``RETROSIM_THREADS``        threads of the element-wise model kernels (1: serial)
``RETROSIM_SCHEDULER``      address ``tcp://host:port`` of a Dask scheduler used by
                            :mod:`retrosim.distributed` when no scheduler is passed (unset)
``RETROSIM_NOTEBOOK_FAST``  ``1``: the tutorial notebooks use few draws and coarse grids (unset)
==========================  ================================================================

Every function here reads the environment when it is called, so a variable set after import
(a notebook cell, ``monkeypatch.setenv``) takes effect.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

#: Folder of the installed package (``.../retrosim``).
PACKAGE_DIR = Path(str(files("retrosim")))
#: Root of a source checkout (the folder holding ``pyproject.toml``), or ``None`` when installed.
SOURCE_ROOT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None


def data_dir() -> Path:
    """Folder of the shipped data (``RETROSIM_DATA``, default the package's ``data`` folder)."""
    return Path(os.environ.get("RETROSIM_DATA", PACKAGE_DIR / "data"))


#: The shipped data folder as resolved at import (for module-level constants and docs).
DATA_DIR = data_dir()


def example_path(name: str) -> Path:
    """Path of a shipped example (``synthetic_trials.csv``, ``lab_raw``, ...).

    Raises
    ------
    FileNotFoundError
        If no example of that name is shipped; the message lists those that are.
    """
    folder = data_dir() / "examples"
    path = folder / name
    if not path.exists():
        names = sorted(p.name for p in folder.iterdir() if p.name != "README.md")
        raise FileNotFoundError(f"no shipped example {name!r}; available: {', '.join(names)}")
    return path


def results_dir(create: bool = True) -> Path:
    """Return the results folder (``RETROSIM_RESULTS``), creating it if asked."""
    default = SOURCE_ROOT / "results" if SOURCE_ROOT is not None else Path("results")
    path = Path(os.environ.get("RETROSIM_RESULTS", default))
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def threads() -> int:
    """Threads of the element-wise model kernels (``RETROSIM_THREADS``, default 1).

    Serial by default: on a 2-core machine the grid benchmark ran faster with one thread than
    with two in every ``make bench`` run (the work is memory-bound).
    """
    env = os.environ.get("RETROSIM_THREADS", "").strip()
    if not env:
        return 1
    try:
        return max(1, int(env))
    except ValueError:
        raise ValueError(
            f"RETROSIM_THREADS must be a whole number of threads, got {env!r}"
        ) from None


#: Name of the variable holding a Dask scheduler address.
SCHEDULER_ENV = "RETROSIM_SCHEDULER"


def scheduler_address() -> str | None:
    """Dask scheduler address from ``RETROSIM_SCHEDULER`` (``None`` when unset or empty)."""
    return os.environ.get(SCHEDULER_ENV) or None


def notebook_fast() -> bool:
    """Whether ``RETROSIM_NOTEBOOK_FAST=1`` asks the tutorials for a quick run."""
    return os.environ.get("RETROSIM_NOTEBOOK_FAST", "") == "1"
