"""Sphinx configuration of the retrosim documentation (``make docs``).

Everything is built offline: no intersphinx inventories are fetched, the notebooks are executed
locally by myst-nb with the small settings of the test suite (``RETROSIM_NOTEBOOK_FAST=1``) and
their results go to a temporary folder, never into the repository.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

import retrosim  # noqa: E402

# -- the notebooks -----------------------------------------------------------------------------
# notebooks/*.py (jupytext percent files) are the single source; docs/tutorials/ links to each
# of them at build time (links are git-ignored), so a new notebook needs no change here.
TUTORIALS = DOCS / "tutorials"
_notebooks = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
for _link in TUTORIALS.glob("*.py"):
    if _link.is_symlink() and not _link.resolve().exists():
        _link.unlink()
for _nb in _notebooks:
    _link = TUTORIALS / _nb.name
    if not _link.is_symlink():
        _link.symlink_to(os.path.relpath(_nb, TUTORIALS))

# The notebook kernels inherit this environment: the small settings of tests/test_notebooks.py,
# inline figures (make exports MPLBACKEND=Agg), and results in a relative folder: myst-nb runs
# each notebook in a temporary working directory (nb_execution_in_temp) and removes it after,
# so nothing is written into the repository.
os.environ["RETROSIM_NOTEBOOK_FAST"] = "1"
os.environ["RETROSIM_RESULTS"] = "results"
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
os.environ.setdefault("PYTHONHASHSEED", "0")

# -- project -----------------------------------------------------------------------------------
project = "retrosim"
author = "retrosim developers"
copyright = "retrosim developers"
release = retrosim.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "retrosim_docs",
]

# conf.py and the local extension are Python files too; .py sources are the notebooks.
exclude_patterns = ["_build", "_ext", "_templates", "conf.py", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# -- API reference -----------------------------------------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = True  # document what a module defines; re-exports link there
autosummary_context = {}  # filled by retrosim_docs (which modules have an equations page)
autodoc_typehints = "none"  # the numpydoc Parameters sections carry types and units
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# numpydoc_validation_checks stays empty: validation would report style, not errors; Sphinx
# itself still fails the build on every docutils/RST error in a docstring (-W).
# nitpicky stays False (Sphinx's default): references to names outside retrosim (numpy, xarray,
# ...) have no inventory offline and render as plain text; references inside retrosim resolve.

# A module docstring collects the references its functions cite, so some of its footnotes are
# referenced only on the functions' entries; Sphinx's "footnote is not referenced" check
# (ref.footnote, nothing else) would flag them. Unknown or broken references still fail.
suppress_warnings = ["ref.footnote"]

# -- notebooks (myst-nb) -----------------------------------------------------------------------
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = False  # a failing cell is a warning (-W fails), every notebook is run
nb_execution_in_temp = True
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"retrosim {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []
html_show_sourcelink = False
html_copy_source = False
