"""Local Sphinx helpers of the retrosim documentation.

``.. module-docstring:: retrosim.models.gait``
    The module's docstring parsed as reStructuredText, with its own section titles. numpydoc
    keeps only the numpydoc sections of a module docstring (it drops sections such as
    "Running, backward: paired direction effects"), so module descriptions bypass it.
    ``:summary:`` renders the first paragraph only.

``.. public-names:: retrosim.ingest``
    A table of the names a package re-exports in ``__all__``, each linked to where it is defined
    and documented.

Functions that cite a reference of their module (``[4]_`` in a function, ``.. [4]`` in the module
docstring) get that entry appended to their own References section when rendered (before numpydoc
sees the docstring), so the citation resolves on the function's entry; a label that the module
does not define either stays an error. The one-line summaries of autosummary tables drop
citation marks (the full entry below the table carries them).

Notebook outputs name files where the build ran (the temporary results folder, a notebook's own
temporary folder, the file of a Python warning inside the environment); those paths are
shortened in the rendered outputs (repository and environment prefixes dropped, temporary
folders shown as ``<tmp>``), so the pages carry no path of the machine that built them.

MathJax is copied into the site from the ``sphinx-mathjax-offline`` package (its own extension
does not declare itself safe for parallel builds, so its two steps are done here): the equations
render without fetching MathJax from a CDN.

Which modules have a page under ``equations/`` is read from those pages (their
``module-docstring`` lines) and handed to the autosummary module template, whose page then links
to the equations page instead of repeating the description.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import site
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.fileutil import copy_asset
from sphinx.util.nodes import nested_parse_with_titles

_DIRECTIVE = re.compile(r"^\.\. module-docstring::\s+(\S+)\s*$", re.M)


def _module_doc(name: str) -> list[str]:
    module = importlib.import_module(name)
    return (inspect.getdoc(module) or "").splitlines()


def _parse(directive: SphinxDirective, lines: list[str], module: str, titles: bool):
    """Parse lines as RST in ``module``'s reference context (short :func: names resolve)."""
    node = nodes.section() if titles else nodes.container()
    node.document = directive.state.document
    context = directive.env.ref_context
    saved = context.get("py:module")
    context["py:module"] = module
    try:
        content = StringList(lines, source=f"docstring of {module}")
        if titles:
            nested_parse_with_titles(directive.state, content, node)
        else:
            directive.state.nested_parse(content, directive.content_offset, node)
    finally:
        if saved is None:
            context.pop("py:module", None)
        else:
            context["py:module"] = saved
    return node.children


class ModuleDocstring(SphinxDirective):
    required_arguments = 1
    option_spec: ClassVar = {"summary": directives.flag}

    def run(self):
        name = self.arguments[0]
        lines = _module_doc(name)
        summary = "summary" in self.options
        if summary:
            end = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
            lines = lines[:end]
        self.env.note_dependency(inspect.getsourcefile(importlib.import_module(name)))
        return _parse(self, lines, name, titles=not summary)


class PublicNames(SphinxDirective):
    required_arguments = 1

    def run(self):
        name = self.arguments[0]
        module = importlib.import_module(name)
        rows = []
        for public in getattr(module, "__all__", ()):
            if public.startswith("__"):
                continue
            obj = getattr(module, public)
            home = getattr(obj, "__module__", None)
            qualname = getattr(obj, "__qualname__", None)
            if home in (None, name) or qualname is None:
                continue  # defined here (documented on this page) or plain data
            doc = inspect.getdoc(obj) or ""
            first = _CITATION_MARK.sub("", doc.split("\n\n", 1)[0].replace("\n", " "))
            # a short name in the summary means one of the defining module's objects
            first = _SHORT_REF.sub(lambda m, home=home: f"{m[1]}`~{home}.{m[2]}`", first)
            rows += [f"   * - :py:obj:`{name}.{public} <{home}.{qualname}>`", f"     - {first}"]
        if not rows:
            return []
        lines = [".. list-table::", "   :widths: 30 70", "", *rows]
        return _parse(self, lines, name, titles=False)


_SHORT_REF = re.compile(r"(:(?:py:)?(?:func|class|meth|attr|data|obj|exc):)`(\w+)`")
_CITATION_MARK = re.compile(r"\s*\[[\w#*-]+\]_")
_CITED = re.compile(r"\[([\w#*-]+)\]_")
_DEFINED = re.compile(r"^\s*\.\. \[([\w#*-]+)\]")


def _module_references(module: str) -> dict[str, list[str]]:
    """The ``.. [label]`` entries of a module docstring, each with its continuation lines."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in _module_doc(module):
        match = _DEFINED.match(line)
        if match and not line.startswith(" "):
            current = match.group(1)
            entries[current] = [line]
        elif current is not None and line.startswith(" ") and line.strip():
            entries[current].append(line)
        else:
            current = None
    return entries


def _home_module(name: str) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in sys.modules:
            return candidate
    return None


def _add_module_references(app, what, name, obj, options, lines):
    if what == "module":
        return
    cited = {label for line in lines for label in _CITED.findall(line)}
    defined = {m.group(1) for line in lines if (m := _DEFINED.match(line))}
    missing = cited - defined
    module = getattr(obj, "__module__", None) or _home_module(name)
    if not missing or module is None:
        return
    available = _module_references(module)
    extra = [line for label in sorted(missing, key=_sort_key) for line in available.get(label, [])]
    if not extra:
        return
    for i in range(len(lines) - 1):
        if lines[i].strip() == "References" and set(lines[i + 1].strip()) == {"-"}:
            lines[i + 2 : i + 2] = [*extra, ""]
            return
    lines += ["", "References", "----------", *extra]


def _sort_key(label: str):
    return (0, int(label)) if label.isdigit() else (1, label)


def _summary_without_citations():
    """Wrap autosummary's summary extraction so table rows drop ``[n]_`` marks."""
    from sphinx.ext import autosummary

    original = autosummary.extract_summary
    if getattr(original, "_retrosim", False):
        return

    def extract_summary(doc, settings):
        return _CITATION_MARK.sub("", original(doc, settings))

    extract_summary._retrosim = True
    autosummary.extract_summary = extract_summary


def _path_patterns():
    """(regex, replacement) pairs that shorten machine paths in notebook outputs."""
    root = Path(__file__).resolve().parents[2]
    prefixes = sorted({*site.getsitepackages(), site.getusersitepackages()}, key=len, reverse=True)
    pairs = [(re.escape(p.rstrip("/")) + "/", "site-packages/") for p in prefixes]
    pairs.append((re.escape(str(root)) + "/", ""))
    pairs.append((re.escape(sys.prefix.rstrip("/")) + "/", ""))
    pairs.append((re.escape(tempfile.gettempdir().rstrip("/")) + r"/[^/\s'\"]+", "<tmp>"))
    pairs.append((re.escape(str(Path.home())) + "/", "~/"))
    return [(re.compile(pattern), replacement) for pattern, replacement in pairs]


def _redact_paths(app, doctree):
    """Shorten machine paths in the outputs of an executed notebook (see the module docstring)."""
    if not app.env.docname.startswith("tutorials/"):
        return
    patterns = _path_patterns()

    def shorten(text: str) -> str:
        for pattern, replacement in patterns:
            text = pattern.sub(replacement, text)
        return text

    for node in list(doctree.findall(nodes.Text)):
        new = shorten(str(node))
        if new != str(node):
            node.parent.replace(node, nodes.Text(new))
    for node in doctree.findall(nodes.raw):
        text = node.astext()
        new = shorten(text)
        if new != text:
            node.children = [nodes.Text(new)]


def _mathjax_dir() -> Path:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("sphinx-mathjax-offline is missing: install the 'docs' extra")
    return Path(spec.origin).parent / "static" / "mathjax"


def _use_local_mathjax(app, config):
    _mathjax_dir()  # fail early, before any page is read, when the package is missing
    config.mathjax_path = "mathjax/tex-chtml.js"


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        copy_asset(str(_mathjax_dir()), str(Path(app.outdir) / "_static" / "mathjax"))


def _equation_pages(app, config):
    pages = {}
    for page in sorted((Path(app.srcdir) / "equations").glob("*.rst")):
        for module in _DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            pages[module] = f"equations/{page.stem}"
    config.autosummary_context["equation_pages"] = pages


def setup(app):
    app.add_directive("module-docstring", ModuleDocstring)
    app.add_directive("public-names", PublicNames)
    app.connect("config-inited", _equation_pages)
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _copy_mathjax)
    # numpydoc's docstring handler has the default priority 500; this one must run first.
    app.connect("autodoc-process-docstring", _add_module_references, priority=400)
    app.connect("doctree-read", _redact_paths)
    _summary_without_citations()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
