"""Every docstring in the package that cites ``[n]_`` lists that reference itself.

numpydoc resolves a citation only within one docstring: a function citing ``[4]_`` while the
entry stands in the module docstring renders a broken link and leaves the reader of ``help()``
without the source. (tests/models/test_docstrings.py checks the models more strictly.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "retrosim"
FILES = sorted(p for p in PACKAGE.rglob("*.py") if "data" not in p.relative_to(PACKAGE).parts)


def _unresolved(source: str):
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node) or ""
            cited = set(re.findall(r"\[(\w+)\]_", doc))
            listed = set(re.findall(r"^\s*\.\. \[(\w+)\]", doc, re.M))
            if cited - listed:
                out.append(f"{getattr(node, 'name', '<module>')}: {sorted(cited - listed)}")
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_citations_resolve_within_each_docstring(path):
    assert not _unresolved(path.read_text(encoding="utf-8"))


def test_the_check_finds_a_dangling_citation():
    src = '"""Module.\n\nReferences\n----------\n.. [1] A.\n"""\n\ndef f():\n    """Uses [1]_."""\n'
    assert _unresolved(src) == ["f: ['1']"]
