"""Build paper/retrosim.pdf: rerun the out-of-date studies, merge their values, compile with Typst.

How a study declares itself
---------------------------
Every ``studies/<name>.py`` that does not start with ``_`` and assigns a module-level ``OUTPUTS``
list is a study. Its declarations are read with :mod:`ast` (the script is never imported here)::

    INPUTS = ["retrosim/data/literature/*.csv", "results/claims.csv", "retrosim.models.chain"]
    OUTPUTS = ["results/fig_cost.png", "results/values/fig_cost.json"]
    ARGS = ["--draws", "200"]          # optional command-line arguments
    TIMEOUT_S = 600                     # optional

* ``INPUTS`` are file or glob patterns relative to the repository root, directories (every file
  below them), or dotted ``retrosim.<module>`` names. A module name stands for its source file *and*
  every ``retrosim`` module it imports, transitively (found by parsing the imports), so a change to
  ``retrosim/models/gait.py`` reruns a study that declared only ``retrosim.models.chain``. The ``retrosim``
  modules the script imports itself, and ``studies/_common.py`` with ``studies/matplotlibrc`` if it
  imports ``_common``, are added automatically; so is the script.
* ``OUTPUTS`` are the files the study writes. A study whose input is another study's output runs
  after it.

Scripts owned by other parts of the project (for example ``studies/sbc_meta.py``) are declared in
:data:`FOREIGN` below instead, with the arguments the paper needs.

When a study reruns
-------------------
After a successful run the SHA-256 of every input and output is stored in
``results/.stamps/<name>.json``. A study reruns when the stamp is missing, an input's content (or
the set of inputs) changed, its arguments changed, or an output is missing or was altered. Content
hashes, not modification times, so a fresh clone or a ``touch`` does not trigger work, and a
study whose rerun produced byte-identical outputs does not rerun the studies downstream.

Then every ``results/values/*.json`` fragment of a registered study is merged into
``paper/generated/values.json`` ({study name: {value name: value}}) and ``paper/retrosim.typ`` is
compiled with the ``typst`` package, with the repository root as Typst root so the manuscript can
read ``/results`` figures, ``/paper/generated/values.json`` and ``/paper/generated/references.bib``. The PDF is
also skipped when none of its inputs changed.

Usage: ``python tools/build_paper.py [--list] [--force NAME ...] [--only NAME ...] [-j N]``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import fnmatch
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "retrosim"
HEARTBEAT_S = 30.0
DEFAULT_TIMEOUT_S = 1800.0

#: Study scripts owned by other parts of the project, run with the settings the paper needs.
FOREIGN: dict[str, dict] = {
    "make_synthetic_trials": {
        "script": "studies/make_synthetic_trials.py",
        "inputs": ["retrosim.models.energetics"],
        "outputs": [
            "retrosim/data/examples/synthetic_trials.csv",
            "retrosim/data/examples/synthetic_trials_truth.json",
        ],
    },
    "trial_coverage": {
        "script": "studies/trial_coverage.py",
        "inputs": ["retrosim.trials.fit"],
        "outputs": ["results/trial_coverage.csv", "results/trial_coverage.json"],
        "args": ["60"],
    },
}


@dataclasses.dataclass
class Study:
    """One step of the pipeline: a script with declared inputs and outputs."""

    name: str
    script: Path
    inputs: list[str]
    outputs: list[str]
    args: list[str] = dataclasses.field(default_factory=list)
    timeout_s: float = DEFAULT_TIMEOUT_S
    modules: set[str] = dataclasses.field(default_factory=set)
    auto_modules: set[str] = dataclasses.field(default_factory=set)
    extra_files: list[str] = dataclasses.field(default_factory=list)


class BuildError(Exception):
    """A study or the manuscript could not be built; the message says why."""


# --------------------------------------------------------------------------- discovery


def _literal(tree: ast.Module, name: str, default=None):
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
            value = node.value
        if name in targets:
            try:
                return ast.literal_eval(value)
            except ValueError as exc:
                raise BuildError(f"{name} must be a literal list (not computed)") from exc
    return default


def _imports(tree: ast.AST, current: str | None, is_package: bool) -> set[str]:
    """Dotted names of the ``retrosim`` modules imported anywhere in ``tree``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if current is None:
                    continue
                parts = current.split(".")
                base = parts if is_package else parts[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            if mod == PACKAGE or mod.startswith(PACKAGE + "."):
                found.add(mod)
                for alias in node.names:  # from retrosim.models import gait -> retrosim.models.gait
                    found.add(f"{mod}.{alias.name}")
    return found


def module_file(name: str, root: Path) -> Path | None:
    """Source file of a dotted module name below ``root``, or None if there is none."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_closure(
    names: set[str], root: Path, declared: bool = True
) -> tuple[set[Path], set[str]]:
    """Source files of ``names`` and of every package module they import, transitively.

    Returns ``(files, missing)``; ``missing`` holds the declared names that have no source file
    (names reached only as ``from pkg import function`` are not modules and are ignored).
    """
    files: set[Path] = set()
    missing: set[str] = set()
    seen: set[str] = set()
    todo = deque((n, declared) for n in sorted(names))
    while todo:
        name, declared = todo.popleft()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name, root)
        if path is None:
            if declared:
                missing.add(name)
            continue
        files.add(path)
        parts = name.split(".")
        for i in range(1, len(parts)):  # importing a.b.c runs a/__init__ and a/b/__init__
            parent = module_file(".".join(parts[:i]), root)
            if parent is not None and parent not in files:
                todo.append((".".join(parts[:i]), False))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for dep in _imports(tree, name, path.name == "__init__.py"):
            todo.append((dep, False))
    return files, missing


def _imports_common(tree: ast.AST) -> bool:
    """Whether a study script imports ``studies/_common.py``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "_common":
            return True
        if isinstance(node, ast.Import | ast.ImportFrom):
            if any(a.name == "_common" for a in node.names):
                return True
    return False


def _is_module_name(entry: str) -> bool:
    return entry == PACKAGE or (
        entry.startswith(PACKAGE + ".") and "/" not in entry and not entry.endswith(".py")
    )


def load_study(
    script: Path, root: Path, spec: dict | None = None, name: str | None = None
) -> Study:
    """Read a study's declarations (module-level literals, or ``spec`` for a foreign script)."""
    name = name or script.stem
    if spec is None:
        tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
        inputs = list(_literal(tree, "INPUTS", []))
        outputs = list(_literal(tree, "OUTPUTS", []))
        args = [str(a) for a in _literal(tree, "ARGS", [])]
        timeout = float(_literal(tree, "TIMEOUT_S", DEFAULT_TIMEOUT_S))
        auto = _imports(tree, None, False)
        uses_common = _imports_common(tree)
    else:
        inputs, outputs = list(spec["inputs"]), list(spec["outputs"])
        args = list(spec.get("args", []))
        timeout = float(spec.get("timeout_s", DEFAULT_TIMEOUT_S))
        auto, uses_common = set(), False
    modules = {e for e in inputs if _is_module_name(e)}
    files = [e for e in inputs if not _is_module_name(e)]
    extra = [str(script.relative_to(root))]
    if uses_common:
        extra += [str(p.relative_to(root)) for p in sorted(script.parent.glob("_common.py"))]
        extra += [str(p.relative_to(root)) for p in sorted(script.parent.glob("matplotlibrc"))]
    return Study(name, script, files, outputs, args, timeout, modules, auto, extra)


def discover(root: Path = ROOT, studies_dir: Path | None = None, foreign=None) -> list[Study]:
    """All studies under ``studies_dir``: scripts that declare OUTPUTS, plus the foreign ones."""
    studies_dir = studies_dir or root / "studies"
    foreign = FOREIGN if foreign is None else foreign
    studies = []
    for script in sorted(studies_dir.glob("*.py")):
        if script.name.startswith("_") or script.stem in foreign:
            continue
        tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
        if _literal(tree, "OUTPUTS") is None:
            continue
        studies.append(load_study(script, root))
    for name, spec in foreign.items():
        studies.append(load_study(root / spec["script"], root, spec, name))
    names = [s.name for s in studies]
    if len(set(names)) != len(names):
        raise BuildError(f"duplicate study names: {sorted(names)}")
    return studies


def order(studies: list[Study], root: Path) -> list[Study]:
    """Topological order: a study runs after the studies whose outputs it reads."""
    producer = {}
    for s in studies:
        for out in s.outputs:
            if out in producer:
                raise BuildError(f"{out} is written by both {producer[out]} and {s.name}")
            producer[out] = s.name
    deps = {s.name: upstream(s, studies, root) for s in studies}
    done: list[str] = []
    state: dict[str, int] = {}

    def visit(name, chain):
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise BuildError("dependency cycle: " + " -> ".join([*chain, name]))
        state[name] = 1
        for d in sorted(deps[name]):
            visit(d, [*chain, name])
        state[name] = 2
        done.append(name)

    for s in studies:
        visit(s.name, [])
    by_name = {s.name: s for s in studies}
    return [by_name[n] for n in done]


def upstream(study: Study, studies: list[Study], root: Path) -> set[str]:
    """Names of the studies that write a file matching one of ``study``'s input patterns."""
    found = set()
    for other in studies:
        if other is study:
            continue
        for out in other.outputs:
            for pattern in study.inputs:
                p = pattern.rstrip("/")
                if fnmatch.fnmatch(out, p) or out.startswith(p + "/"):
                    found.add(other.name)
    return found


# --------------------------------------------------------------------------- hashing and stamps


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def input_files(study: Study, root: Path) -> tuple[dict[str, str], list[str]]:
    """Hashes of every input file of ``study`` ({relative path: sha256}) and what is missing."""
    paths: set[Path] = set()
    missing: list[str] = []
    for pattern in study.inputs:
        target = root / pattern
        if target.is_dir():
            matched = [p for p in target.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        else:
            matched = [Path(p) for p in glob.glob(str(target), recursive=True)]
            matched = [p for p in matched if p.is_file()]
        if not matched:
            missing.append(pattern)
        paths.update(matched)
    for extra in study.extra_files:
        if (root / extra).is_file():
            paths.add(root / extra)
        else:
            missing.append(extra)
    files, missing_modules = module_closure(study.modules, root)
    paths.update(files)
    # imports found in the script itself: `from retrosim.x import name` also yields the
    # candidate module retrosim.x.name, which need not exist, so these are never "missing"
    paths.update(module_closure(study.auto_modules, root, declared=False)[0])
    missing += sorted(missing_modules)
    hashes = {str(p.relative_to(root)): sha256(p) for p in sorted(paths)}
    return hashes, missing


def stamp_path(study: Study, root: Path) -> Path:
    return root / "results" / ".stamps" / f"{study.name}.json"


def why_stale(study: Study, root: Path, hashes: dict[str, str]) -> str | None:
    """Why ``study`` must rerun, or None if it is up to date."""
    path = stamp_path(study, root)
    if not path.is_file():
        return "never built"
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return "stamp unreadable"
    old = stamp.get("inputs", {})
    changed = sorted(k for k in hashes.keys() | old.keys() if hashes.get(k) != old.get(k))
    if changed:
        more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
        return "changed: " + ", ".join(changed[:3]) + more
    if stamp.get("args") != study.args:
        return "arguments changed"
    for out in study.outputs:
        p = root / out
        if not p.is_file():
            return f"output missing: {out}"
        if stamp.get("outputs", {}).get(out) != sha256(p):
            return f"output altered: {out}"
    return None


def write_stamp(study: Study, root: Path, hashes: dict[str, str], seconds: float) -> None:
    outputs = {out: sha256(root / out) for out in study.outputs}
    stamp = {"inputs": hashes, "outputs": outputs, "args": study.args, "seconds": round(seconds, 1)}
    path = stamp_path(study, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


# --------------------------------------------------------------------------- running

_print_lock = threading.Lock()


def say(msg: str = "") -> None:
    with _print_lock:
        print(msg, flush=True)


def run_study(study: Study, root: Path, prefix: str) -> float:
    """Run one study in a subprocess, streaming its output; return its wall time in seconds."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0", PYTHONUNBUFFERED="1")
    env.setdefault("RETROSIM_RESULTS", str(root / "results"))
    # the checkout being built, not whatever copy of the package is installed, is imported
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, str(study.script), *study.args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    last = [time.perf_counter()]
    tail: deque[str] = deque(maxlen=25)
    stop = threading.Event()

    def heartbeat():
        while not stop.wait(5.0):
            now = time.perf_counter()
            if now - last[0] >= HEARTBEAT_S:
                say(f"{prefix} ... still running ({now - t0:.0f} s)")
                last[0] = now
            if now - t0 > study.timeout_s:
                proc.kill()
                return

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if not line:
            continue
        tail.append(line)
        last[0] = time.perf_counter()
        say(f"{prefix} | {line}")
    code = proc.wait()
    stop.set()
    seconds = time.perf_counter() - t0
    if seconds > study.timeout_s:
        raise BuildError(f"timed out after {study.timeout_s:.0f} s")
    if code != 0:
        last_lines = "\n".join(f"    {t}" for t in list(tail)[-8:])
        raise BuildError(f"exited with code {code}; last output:\n{last_lines}")
    absent = [o for o in study.outputs if not (root / o).is_file()]
    if absent:
        raise BuildError("finished but did not write its declared outputs: " + ", ".join(absent))
    return seconds


@dataclasses.dataclass
class Report:
    """What a build did: studies rerun (with seconds), up to date, failed and skipped."""

    rebuilt: dict[str, float] = dataclasses.field(default_factory=dict)
    fresh: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def build(
    studies: list[Study],
    root: Path = ROOT,
    jobs: int = 1,
    force: set[str] | None = None,
    only: set[str] | None = None,
) -> Report:
    """Bring every study up to date, running independent ones up to ``jobs`` at a time."""
    force = force or set()
    ordered = order(studies, root)
    if only:
        unknown = only - {s.name for s in ordered}
        if unknown:
            raise BuildError(f"unknown study: {', '.join(sorted(unknown))}")
        wanted = set(only)
        for s in reversed(ordered):  # the chosen studies and what they depend on
            if s.name in wanted:
                wanted |= upstream(s, ordered, root)
        ordered = [s for s in ordered if s.name in wanted]
    deps = {s.name: upstream(s, ordered, root) for s in ordered}
    report = Report()
    pending = list(ordered)
    running: dict = {}
    total = len(ordered)
    counter = [0]

    def start(study: Study, pool: ThreadPoolExecutor):
        hashes, missing = input_files(study, root)
        counter[0] += 1
        prefix = f"[{counter[0]}/{total}] {study.name}"
        if missing:
            report.failed[study.name] = "missing inputs: " + ", ".join(missing)
            say(f"{prefix}: FAILED, missing inputs: {', '.join(missing)}")
            return None
        reason = "forced" if study.name in force else why_stale(study, root, hashes)
        if reason is None:
            report.fresh.append(study.name)
            say(f"{prefix}: up to date")
            return None
        say(f"{prefix}: running ({reason})")
        stamp_path(study, root).unlink(missing_ok=True)
        return pool.submit(_run_and_stamp, study, root, prefix, hashes)

    jobs = max(1, jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            progressed = False
            for study in list(pending):
                if len(running) >= jobs:
                    break
                blockers = deps[study.name]
                bad = blockers & (report.failed.keys() | report.skipped.keys())
                if bad:
                    pending.remove(study)
                    progressed = True
                    counter[0] += 1
                    report.skipped[study.name] = "needs " + ", ".join(sorted(bad))
                    say(
                        f"[{counter[0]}/{total}] {study.name}: skipped ({report.skipped[study.name]})"
                    )
                    continue
                waiting = {p.name for p in pending} | set(running.values())
                if blockers & waiting:
                    continue
                pending.remove(study)
                progressed = True
                future = start(study, pool)
                if future is not None:
                    running[future] = study.name
            if not running:
                if pending and not progressed:
                    raise BuildError("scheduler stalled: " + ", ".join(p.name for p in pending))
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                try:
                    report.rebuilt[name] = future.result()
                    say(f"    {name}: done in {report.rebuilt[name]:.1f} s")
                except BuildError as exc:
                    report.failed[name] = str(exc)
                    say(f"    {name}: FAILED, {exc}")
    return report


def _run_and_stamp(study: Study, root: Path, prefix: str, hashes: dict[str, str]) -> float:
    seconds = run_study(study, root, prefix)
    write_stamp(study, root, hashes, seconds)
    return seconds


# --------------------------------------------------------------------------- values and paper


def merge_values(studies: list[Study], root: Path, out: Path) -> dict:
    """Merge ``results/values/<study>.json`` fragments into one JSON file keyed by study name."""
    merged = {}
    for s in sorted(studies, key=lambda s: s.name):
        frag = [o for o in s.outputs if o.startswith("results/values/") and o.endswith(".json")]
        for f in frag:
            merged[Path(f).stem] = json.loads((root / f).read_text(encoding="utf-8"))
    text = json.dumps(merged, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    return merged


def _bib_entries(text: str) -> dict[str, str]:
    """BibTeX entries of ``text`` keyed by citation key (entries start with ``@type{key,``)."""
    entries: dict[str, str] = {}
    for chunk in re.split(r"(?m)^(?=@)", text):
        m = re.match(r"@\w+\s*\{\s*([^,\s]+)\s*,", chunk)
        if m:
            entries[m.group(1)] = chunk.rstrip() + "\n"
    return entries


def merge_bibliography(root: Path, out: Path) -> int:
    """Write retrosim/data/references.bib plus the paper/methods.bib entries whose keys it lacks.

    The evidence dataset owns retrosim/data/references.bib and may add a source the manuscript also
    cites; merging here keeps the two files free to overlap without a duplicate-key error.
    Returns the number of entries written.
    """
    evidence = _bib_entries(
        (root / "retrosim" / "data" / "references.bib").read_text(encoding="utf-8")
    )
    methods_path = root / "paper" / "methods.bib"
    methods = (
        _bib_entries(methods_path.read_text(encoding="utf-8")) if methods_path.is_file() else {}
    )
    merged = {**methods, **evidence}
    text = "".join(merged[k] + "\n" for k in sorted(merged))
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    return len(merged)


def compile_paper(studies: list[Study], root: Path = ROOT) -> str:
    """Compile paper/retrosim.typ unless neither it nor anything it reads changed."""
    import typst

    paper = root / "paper"
    source, pdf = paper / "retrosim.typ", paper / "retrosim.pdf"
    deps = [p for p in sorted(paper.rglob("*")) if p.is_file() and p.suffix != ".pdf"]
    deps += [root / o for s in studies for o in s.outputs if (root / o).is_file()]
    deps += [p for p in [root / "retrosim" / "data" / "references.bib"] if p.is_file()]
    digest = hashlib.sha256()
    for p in sorted(set(deps)):
        digest.update(str(p.relative_to(root)).encode() + b"\0" + sha256(p).encode())
    stamp = root / "results" / ".stamps" / "_paper.json"
    key = digest.hexdigest()
    if pdf.is_file() and stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        return "up to date"
    tmp = pdf.with_suffix(".pdf.tmp")
    try:
        typst.compile(str(source), output=str(tmp), root=str(root))
    except Exception as exc:  # typst raises its own error type with the diagnostics
        tmp.unlink(missing_ok=True)
        raise BuildError(f"Typst could not compile {source.relative_to(root)}:\n{exc}") from exc
    tmp.replace(pdf)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"key": key}), encoding="utf-8")
    return "compiled"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--list", action="store_true", help="show each study and whether it is stale"
    )
    parser.add_argument("--force", nargs="*", default=[], metavar="NAME", help="rerun these")
    parser.add_argument("--only", nargs="*", default=[], metavar="NAME", help="build only these")
    parser.add_argument("-j", "--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--no-pdf", action="store_true", help="run the studies, skip Typst")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        studies = discover()
        if args.list:
            for s in order(studies, ROOT):
                hashes, missing = input_files(s, ROOT)
                state = "missing " + ", ".join(missing) if missing else why_stale(s, ROOT, hashes)
                print(f"{s.name:28s} {state or 'up to date'}")
            return 0
        force = set(args.force) if args.force else set()
        report = build(studies, ROOT, jobs=args.jobs, force=force, only=set(args.only))
    except BuildError as exc:
        print(f"build_paper: {exc}", file=sys.stderr)
        return 1
    say()
    if report.rebuilt:
        say("rebuilt: " + ", ".join(f"{n} ({t:.1f} s)" for n, t in report.rebuilt.items()))
    else:
        say("rebuilt: nothing (all studies up to date)")
    if not report.ok:
        for name, why in {**report.failed, **report.skipped}.items():
            say(f"NOT BUILT {name}: {why.splitlines()[0]}")
        say(f"paper: not compiled, {len(report.failed) + len(report.skipped)} studies missing")
        return 1
    if args.no_pdf or args.only:
        say(f"studies done in {time.perf_counter() - t0:.1f} s")
        return 0
    t1 = time.perf_counter()
    merge_values(studies, ROOT, ROOT / "paper" / "generated" / "values.json")
    merge_bibliography(ROOT, ROOT / "paper" / "generated" / "references.bib")
    try:
        state = compile_paper(studies, ROOT)
    except BuildError as exc:
        print(f"build_paper: {exc}", file=sys.stderr)
        return 1
    say(f"paper: paper/retrosim.pdf {state} ({time.perf_counter() - t1:.1f} s)")
    say(f"make paper: total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
