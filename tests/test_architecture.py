"""The package's architecture rules, checked on the source (parsed, never imported).

* models never import the inference layers, PyMC or the command line;
* no module uses a private name (``_x``) of a module in another subpackage, and the study
  scripts and notebooks use only public names;
* every vocabulary term is defined once (``retrosim.vocabulary``);
* ``RETROSIM_*`` environment variables are read only in ``retrosim.config``;
* the library never switches the matplotlib backend;
* the tests never skip because one of the package's own modules fails to import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "retrosim"
#: Package-wide helper modules whose names start with "_" but are meant to be shared.
SHARED_HELPERS = {"retrosim._io", "retrosim._checks", "retrosim._console", "retrosim._version"}
VOCABULARY = {
    "DIRECTIONS",
    "MODES",
    "EVIDENCE_MODES",
    "SPEED_MATCHINGS",
    "MATCHINGS",
    "DESIGNS",
    "SURFACES",
    "DISP_KINDS",
    "RESULT_DIRECTIONS",
    "UNITS",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_files():
    return sorted(p for p in PACKAGE.rglob("*.py") if "data" not in p.relative_to(PACKAGE).parts)


def _subpackage(module: str) -> str:
    """``retrosim.models.gait`` -> ``retrosim.models``; top-level modules stand alone."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _imports(tree: ast.AST, module: str, is_package: bool):
    """Yield (imported module, imported name or None, node) for every import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            for alias in node.names:
                yield mod, alias.name, node


def _parse(path: Path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(path: Path, module: str | None):
    """Private names of retrosim modules outside ``module``'s subpackage used in ``path``."""
    tree = _parse(path)
    is_package = path.name == "__init__.py"
    own = _subpackage(module) if module else None
    aliases: dict[str, str] = {}  # local name -> retrosim module it is bound to
    found = []
    for mod, name, node in _imports(tree, module or "", is_package):
        if not mod.startswith("retrosim"):
            continue
        full = f"{mod}.{name}" if name else mod
        target = full if name and (PACKAGE / Path(*full.split(".")[1:])).exists() else mod
        for candidate in (full, target):
            leaf = candidate.split(".")[-1]
            if _is_private(leaf) and candidate not in SHARED_HELPERS:
                if own is None or _subpackage(candidate) != own:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {candidate}")
                break
        if name and _is_private(name) and mod not in SHARED_HELPERS:
            if own is None or _subpackage(mod) != own:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {mod}.{name}")
        alias_name = next(a.asname or a.name for a in node.names if a.name == (name or mod))
        aliases[alias_name.split(".")[0]] = full if name else mod
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id in aliases:
                target = aliases[base.id]
                if own is None or _subpackage(target) != own:
                    found.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} uses {target}.{node.attr}"
                    )
    return sorted(set(found))


def test_models_import_no_inference_pymc_or_cli():
    forbidden = ("retrosim.bayes", "retrosim.meta", "retrosim.trials", "retrosim.cli", "pymc")
    offenders = []
    for path in sorted((PACKAGE / "models").rglob("*.py")):
        module = _module_name(path)
        for mod, _name, node in _imports(_parse(path), module, path.name == "__init__.py"):
            if mod.startswith(forbidden):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {mod}")
    assert not offenders, "\n".join(offenders)


def test_no_private_name_used_across_subpackages():
    offenders = [o for p in _package_files() for o in _private_uses(p, _module_name(p))]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("folder", ["studies", "notebooks", "benchmarks"])
def test_scripts_use_only_public_names(folder):
    offenders = [o for p in sorted((ROOT / folder).glob("*.py")) for o in _private_uses(p, None)]
    assert not offenders, "\n".join(offenders)


def test_each_vocabulary_term_is_defined_once():
    defined = {}
    for path in _package_files():
        for node in ast.walk(_parse(path)):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id in VOCABULARY:
                    defined.setdefault(t.id, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    twice = {k: v for k, v in defined.items() if len(v) > 1}
    assert not twice, twice
    outside = {k: v for k, v in defined.items() if not v[0].startswith("retrosim/vocabulary.py")}
    assert not outside, outside


def _reads_retrosim_variable(node) -> bool:
    """``os.environ.get(k)``, ``os.getenv(k)`` or ``os.environ[k]`` with k a RETROSIM_ name."""
    if isinstance(node, ast.Call) and ast.unparse(node.func) in {"os.environ.get", "os.getenv"}:
        key = node.args[0] if node.args else None
    elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        key = node.slice if ast.unparse(node.value) == "os.environ" else None
    else:
        return False
    # a name (e.g. SCHEDULER_ENV) counts too: only config may hold the variables' names
    return key is not None and not (
        isinstance(key, ast.Constant) and not str(key.value).startswith("RETROSIM_")
    )


def test_environment_is_read_only_in_config():
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}"
        for path in _package_files()
        if path != PACKAGE / "config.py"
        for node in ast.walk(_parse(path))
        if _reads_retrosim_variable(node)
    ]
    assert not offenders, "\n".join(offenders)


def test_library_never_switches_matplotlib_backend():
    offenders = []
    for path in _package_files():
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                if func.endswith(("matplotlib.use", "plt.switch_backend", "pyplot.switch_backend")):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {func}")
    assert not offenders, "\n".join(offenders)


def test_tests_never_importorskip_own_modules():
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("importorskip"):
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and str(arg.value).startswith("retrosim"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, "\n".join(offenders)


def test_the_rules_catch_a_violation(tmp_path):
    """The checks find planted violations (so a pass means something)."""
    bad = tmp_path / "retrosim" / "meta" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from retrosim.trials import fit\nx = fit._conditions\n", encoding="utf-8")
    env = ast.parse(
        "import os\nos.environ.get('RETROSIM_X')\nos.environ['RETROSIM_Y']\nos.environ.get('HOME')"
    )
    assert sum(_reads_retrosim_variable(n) for n in ast.walk(env)) == 2
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert _private_uses(bad, "retrosim.meta.bad") == [
            "retrosim/meta/bad.py:2 uses retrosim.trials.fit._conditions"
        ]
    finally:
        ROOT = saved
