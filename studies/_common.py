"""Shared helpers of the study scripts: paths, figure style, atomic writers, named values.

Every study script in this folder declares module-level ``INPUTS`` and ``OUTPUTS`` (read by
``tools/build_paper.py`` without importing the script), does its work in ``main()``, and writes

* its data to ``results/<name>.nc`` or ``results/tables/<name>.csv``,
* its figure to ``results/figures/<name>.png`` (style from ``studies/matplotlibrc``),
* the numbers the manuscript quotes to ``results/values/<name>.json`` with :func:`write_values`.

Nothing here reads the clock or global random state, so a rerun writes identical files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as `python studies/x.py` from a checkout without install
    sys.path.insert(0, str(ROOT))

from retrosim._io import atomic_path  # noqa: E402

DATA = ROOT / "retrosim" / "data"
RESULTS = Path(os.environ.get("RETROSIM_RESULTS", ROOT / "results"))
FIGURES = RESULTS / "figures"
TABLES = RESULTS / "tables"
VALUES = RESULTS / "values"
RCFILE = HERE / "matplotlibrc"

#: Colours of the two directions in every figure (Okabe-Ito blue and vermillion).
COLORS = {"forward": "#0072B2", "backward": "#D55E00"}
#: Significant digits kept in the value fragments (the manuscript rounds further).
SIGNIFICANT = 6

log = logging.getLogger("study")


def setup(name: str) -> logging.Logger:
    """Configure logging and the matplotlib style for study ``name``; return its logger."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    for noisy in ("pymc", "pytensor", "numba", "matplotlib", "h5py", "arviz"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rc_file(RCFILE)
    return logging.getLogger(name)


def _plain(value):
    """JSON-ready copy of ``value``: numpy scalars to Python, floats to SIGNIFICANT digits."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"value {x} is not finite; the manuscript cannot quote it")
        if x == 0:
            return 0.0
        return float(f"{x:.{SIGNIFICANT}g}")
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cannot write {type(value).__name__} to a value fragment")


def write_values(name: str, values: Mapping) -> Path:
    """Write the named values a study contributes to the manuscript (results/values/<name>.json)."""
    path = VALUES / f"{name}.json"
    text = json.dumps(_plain(values), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.info("wrote %s", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return path


def savefig(fig, name: str) -> Path:
    """Save ``fig`` as results/figures/<name>.png (no timestamp, so reruns are identical)."""
    import matplotlib.pyplot as plt

    path = FIGURES / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    log.info("wrote %s", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return path


def write_table(df, name: str, float_format: str = "%.6g") -> Path:
    """Write a pandas DataFrame to results/tables/<name>.csv (no index)."""
    path = TABLES / f"{name}.csv"
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format=float_format, lineterminator="\n")
    log.info("wrote %s", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return path


def write_netcdf(ds, name: str) -> Path:
    """Write an xarray Dataset to results/<name>.nc atomically."""
    path = RESULTS / f"{name}.nc"
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    log.info("wrote %s", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return path


def progress(items: Iterable, total: int, label: str, every_s: float = 10.0) -> Iterator:
    """Yield from ``items``, logging ``label i/total`` at most every ``every_s`` seconds."""
    t0 = last = time.perf_counter()
    for i, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        if now - last >= every_s or i == total:
            rate = i / max(now - t0, 1e-9)
            eta = (total - i) / rate if rate else float("nan")
            log.info("%s %d/%d (%.0f s, about %.0f s left)", label, i, total, now - t0, eta)
            last = now
