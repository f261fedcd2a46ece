"""Docstrings of the models: every function cites only references it lists, with units.

numpydoc resolves ``[n]_`` within one docstring, so a function that cites ``[4]_`` while the
list stands in the module docstring renders a broken link; and a model function without units
in brackets or a References section does not say what it computes or where it was read.
"""

import inspect
import re

import pytest

from retrosim.models import _kernels, chain, energetics, gait, knee

MODULES = (energetics, gait, knee, chain, _kernels)


def _documented(module):
    yield module.__name__, module
    for name, obj in vars(module).items():
        target = inspect.unwrap(obj) if callable(obj) else obj
        if (inspect.isfunction(target) or inspect.isclass(target)) and getattr(
            target, "__module__", ""
        ) == module.__name__:
            yield f"{module.__name__}.{name}", obj


ALL = [pytest.param(obj, id=name) for m in MODULES for name, obj in _documented(m)]


@pytest.mark.parametrize("obj", ALL)
def test_citations_resolve_within_the_docstring(obj):
    doc = inspect.getdoc(obj) or ""
    cited = set(re.findall(r"\[(\d+)\]_", doc))
    listed = set(re.findall(r"^\.\. \[(\d+)\]", doc, re.M))
    assert cited <= listed, f"cites {sorted(cited - listed)} without listing them"
    assert listed <= cited, f"lists {sorted(listed - cited)} without citing them"


#: The published models, one function each: every energetics model is the function of its name.
MODEL_FUNCTIONS = [
    *(getattr(energetics, name) for name in energetics.MODELS),
    gait.sine_wave_peak_force,
    knee.quadriceps_moment_arm,
    knee.pfj_force_ratio,
    knee.contact_area,
]


@pytest.mark.parametrize("func", MODEL_FUNCTIONS, ids=lambda f: f.__name__)
def test_model_functions_document_units_range_and_references(func):
    doc = inspect.getdoc(func)
    for section in ("Parameters", "Returns", "References"):
        assert f"\n{section}\n" in doc, section
    returns = doc.split("\nReturns\n")[1].split("\nReferences\n")[0]
    assert re.search(r"\[[^\]]+\]", returns), "the return value has no units in brackets"
    params = doc.split("\nParameters\n")[1].split("\nReturns\n")[0]
    assert re.search(r"\[(m/s|1|s|kg|deg)\]", params), "no argument has units in brackets"
    if func.__module__ == energetics.__name__:
        assert "validated" in params, "the validated range is not stated"
