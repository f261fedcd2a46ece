"""The `make paper` pipeline: dependency logic on a toy project, and the manuscript's generated numbers.

The toy project lives in tmp_path (tiny scripts, no retrosim model code), so these tests exercise
tools/build_paper.py's staleness and ordering rules without running the real, expensive studies.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_paper", ROOT / "tools" / "build_paper.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_paper"] = module  # dataclasses look the module up while it executes
    spec.loader.exec_module(module)
    return module


bp = _load_builder()

# a: sums column x of data/a.csv -> results/a.txt
# b: counts rows of data/b.csv   -> results/b.txt; also depends on the toy package module retrosim.chain
# c: reads results/a.txt          -> results/c.txt (downstream of a)
STUDY_A = """
    from pathlib import Path
    INPUTS = ["data/a.csv"]
    OUTPUTS = ["results/a.txt"]
    rows = Path("data/a.csv").read_text().split()[1:]
    Path("results").mkdir(exist_ok=True)
    Path("results/a.txt").write_text(str(sum(int(r.split(",")[0]) for r in rows)))
"""
STUDY_B = """
    from pathlib import Path
    INPUTS = ["data/b.csv", "retrosim.chain"]
    OUTPUTS = ["results/b.txt"]
    Path("results").mkdir(exist_ok=True)
    Path("results/b.txt").write_text(str(len(Path("data/b.csv").read_text().split())))
"""
STUDY_C = """
    from pathlib import Path
    INPUTS = ["results/a.txt"]
    OUTPUTS = ["results/c.txt", "results/values/c.json"]
    Path("results/values").mkdir(parents=True, exist_ok=True)
    total = int(Path("results/a.txt").read_text())
    Path("results/c.txt").write_text(str(2 * total))
    Path("results/values/c.json").write_text('{"twice": %d}' % (2 * total))
"""


@pytest.fixture
def toy(tmp_path):
    (tmp_path / "studies").mkdir()
    (tmp_path / "data").mkdir()
    pkg = tmp_path / "retrosim"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "gait.py").write_text("K = 1\n")
    (pkg / "chain.py").write_text("from .gait import K\n")
    (pkg / "claims.py").write_text("X = 2\n")  # imported by nobody
    for name, body in (("a", STUDY_A), ("b", STUDY_B), ("c", STUDY_C)):
        (tmp_path / "studies" / f"{name}.py").write_text(textwrap.dedent(body))
    (tmp_path / "studies" / "_helper.py").write_text("OUTPUTS = ['ignored']\n")
    (tmp_path / "data" / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "data" / "b.csv").write_text("x\n5\n6\n")
    return tmp_path


def build(root, **kw):
    studies = bp.discover(root, foreign={})
    return bp.build(studies, root, **kw)


def test_first_build_runs_all_in_dependency_order(toy):
    studies = bp.discover(toy, foreign={})
    assert sorted(s.name for s in studies) == ["a", "b", "c"]  # _helper is not a study
    names = [s.name for s in bp.order(studies, toy)]
    assert names.index("a") < names.index("c")
    report = bp.build(studies, toy)
    assert report.ok and set(report.rebuilt) == {"a", "b", "c"}
    assert (toy / "results/c.txt").read_text() == "8"  # 2 * (1 + 3)


def test_rerun_without_change_rebuilds_nothing(toy):
    build(toy)
    report = build(toy)
    assert report.rebuilt == {} and sorted(report.fresh) == ["a", "b", "c"]


def test_touch_without_content_change_rebuilds_nothing(toy):
    build(toy)
    path = toy / "data" / "a.csv"
    path.write_text(path.read_text())  # new mtime, same bytes
    assert build(toy).rebuilt == {}


def test_changed_row_reruns_only_dependents(toy):
    build(toy)
    (toy / "data" / "a.csv").write_text("x,y\n1,2\n5,4\n")  # one row changed
    report = build(toy)
    assert set(report.rebuilt) == {"a", "c"}
    assert (toy / "results/c.txt").read_text() == "12"
    assert json.loads((toy / "results/values/c.json").read_text()) == {"twice": 12}


def test_same_output_stops_propagation(toy):
    build(toy)
    (toy / "data" / "a.csv").write_text("x,y\n3,2\n1,4\n")  # rows swapped: same sum
    report = build(toy)
    assert set(report.rebuilt) == {"a"}  # c's input a.txt is byte-identical


def test_transitive_module_change_reruns_study(toy):
    build(toy)
    (toy / "retrosim" / "claims.py").write_text("X = 3\n")  # not imported by chain
    assert build(toy).rebuilt == {}
    (toy / "retrosim" / "gait.py").write_text("K = 2\n")  # imported by chain
    assert set(build(toy).rebuilt) == {"b"}


def test_deleted_or_altered_output_is_rebuilt(toy):
    build(toy)
    (toy / "results" / "b.txt").unlink()
    assert set(build(toy).rebuilt) == {"b"}
    (toy / "results" / "c.txt").write_text("tampered")
    assert set(build(toy).rebuilt) == {"c"}
    assert (toy / "results/c.txt").read_text() == "8"


def test_failure_skips_dependents_and_is_retried(toy):
    (toy / "data" / "a.csv").write_text("x,y\nnot-a-number,2\n")
    report = build(toy)
    assert "a" in report.failed and "exited with code" in report.failed["a"]
    assert "c" in report.skipped and set(report.rebuilt) == {"b"}
    (toy / "data" / "a.csv").write_text("x,y\n1,2\n")
    assert set(build(toy).rebuilt) == {"a", "c"}


def test_missing_module_fails_with_clear_message(toy):
    (toy / "studies" / "d.py").write_text(
        "INPUTS = ['retrosim.knee']\nOUTPUTS = ['results/d.txt']\n"
    )
    report = build(toy)
    assert report.failed["d"] == "missing inputs: retrosim.knee"


def test_undeclared_output_is_an_error(toy):
    (toy / "studies" / "e.py").write_text("INPUTS = []\nOUTPUTS = ['results/never.txt']\n")
    report = build(toy)
    assert "did not write" in report.failed["e"]


def test_parallel_build_matches_serial(toy):
    report = build(toy, jobs=2)
    assert report.ok and set(report.rebuilt) == {"a", "b", "c"}
    assert (toy / "results/c.txt").read_text() == "8"


def test_merge_values_keys_by_study(toy):
    build(toy)
    out = toy / "paper" / "generated" / "values.json"
    merged = bp.merge_values(bp.discover(toy, foreign={}), toy, out)
    assert merged == {"c": {"twice": 8}}
    assert json.loads(out.read_text()) == merged


def test_cycle_is_reported(tmp_path):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "p.py").write_text(
        "INPUTS=['results/q.txt']\nOUTPUTS=['results/p.txt']\n"
    )
    (tmp_path / "studies" / "q.py").write_text(
        "INPUTS=['results/p.txt']\nOUTPUTS=['results/q.txt']\n"
    )
    with pytest.raises(bp.BuildError, match="cycle"):
        bp.order(bp.discover(tmp_path, foreign={}), tmp_path)


# --------------------------------------------------------------------------- the real manuscript


def _manuscript_files():
    """The manuscript and the section files it includes."""
    return [ROOT / "paper" / "retrosim.typ", *sorted((ROOT / "paper" / "sections").glob("*.typ"))]


def test_sections_are_included():
    text = (ROOT / "paper" / "retrosim.typ").read_text(encoding="utf-8")
    for path in _manuscript_files()[1:]:
        assert f'#include "sections/{path.name}"' in text, f"{path.name} is not included"


def test_real_studies_declare_values_the_manuscript_reads():
    """Every `v.<study>.<key>` in the manuscript names a study that writes a value fragment."""
    studies = {s.name: s for s in bp.discover(ROOT)}
    text = "\n".join(p.read_text(encoding="utf-8") for p in _manuscript_files())
    used = set(re.findall(r"\bv\.([a-z_0-9]+)\.", text))
    used |= set(re.findall(r"#let \w+ = v\.([a-z_0-9]+)\s*$", text, flags=re.MULTILINE))
    assert used, "the manuscript quotes no generated value"
    for study in used:
        assert study in studies, f"manuscript reads values of unknown study {study!r}"
        assert f"results/values/{study}.json" in studies[study].outputs


def test_manuscript_types_no_number_by_hand():
    """Outside comments, equations, citations and labels, prose has no digits except section refs."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in _manuscript_files())
    offenders = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):  # code lines: #let, #if, #import, #figure(...)
            continue
        line = re.sub(r"//.*", "", line)
        line = re.sub(r"\$[^$]*\$", "", line)  # equations (their constants are cited)
        line = re.sub(r"#[a-zA-Z_.-]+\([^)]*\)", "", line)  # function calls: num(v.x, d: 1)
        line = re.sub(r"#[a-zA-Z_][\w.]*", "", line)  # value paths: #cl.knee_stress_30.text
        line = re.sub(r"\b[A-Za-z]+\d+\b", "", line)  # symbols such as VO2
        line = re.sub(r"@[A-Za-z0-9_:-]+|<[A-Za-z0-9_:-]+>", "", line)  # citations, labels
        line = re.sub(r"\"[^\"]*\"", "", line)  # strings (paths, keys)
        line = re.sub(r"\b\d+(\.\d+)?(cm|pt|em|in|mm|fr)\b", "", line)  # lengths
        line = re.sub(r"(width|height): *\d+%", "", line)  # relative sizes
        if re.search(r"\d", line) and not line.lstrip().startswith("#"):
            offenders.append(f"{lineno}: {line.strip()}")
    assert not offenders, "numbers typed into the manuscript:\n" + "\n".join(offenders)


def test_bibliography_merge_prefers_evidence_entries(tmp_path):
    (tmp_path / "retrosim" / "data").mkdir(parents=True)
    (tmp_path / "paper").mkdir()
    (tmp_path / "retrosim" / "data" / "references.bib").write_text(
        "@article{a1,\n  title = {Evidence A},\n}\n\n@misc{shared,\n  title = {From data},\n}\n"
    )
    (tmp_path / "paper" / "methods.bib").write_text(
        "% comment\n@misc{shared,\n  title = {From paper},\n}\n@book{m1,\n  title = {M},\n}\n"
    )
    out = tmp_path / "paper" / "generated" / "references.bib"
    assert bp.merge_bibliography(tmp_path, out) == 3
    text = out.read_text()
    assert text.count("{shared,") == 1 and "From data" in text and "From paper" not in text
    assert "{a1," in text and "{m1," in text


def test_imports_in_script_are_dependencies_without_declaring_them(toy):
    (toy / "studies" / "f.py").write_text(
        "import sys\nsys.path.insert(0, '.')\nfrom pathlib import Path\n"
        "from retrosim.chain import K\nfrom retrosim import gait\n"
        "INPUTS = []\nOUTPUTS = ['results/f.txt']\nPath('results').mkdir(exist_ok=True)\n"
        "Path('results/f.txt').write_text(str(K + gait.K))\n"
    )
    assert "f" in build(toy).rebuilt
    (toy / "retrosim" / "gait.py").write_text("K = 5\n")
    report = build(toy)
    assert set(report.rebuilt) == {"b", "f"}  # b declares retrosim.chain; f imports it
    assert (toy / "results/f.txt").read_text() == "10"
