"""`make bench`: run every ``benchmarks/bench_*.py``, write benchmarks/results.json, print a table.

Each benchmark module exposes ``run() -> dict`` mapping a metric name to a number (or a short
string). Ratios are measured against a baseline run in the same process by the benchmark
itself, never against numbers from another machine. ``--only NAME`` runs a subset.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        info["memory_gib"] = round(mem_kb / 2**20, 1)
    except OSError:
        pass
    return info


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="benchmark names (e.g. grid meta)")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    files = sorted(HERE.glob("bench_*.py"))
    if args.only:
        files = [f for f in files if f.stem.removeprefix("bench_") in args.only]
    results, failed = {}, []
    t_all = time.perf_counter()
    for path in files:
        name = path.stem.removeprefix("bench_")
        print(f"[bench] {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            metrics = load(path).run()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        metrics["wall_s"] = round(time.perf_counter() - t0, 2)
        results[name] = metrics
        print(f"[bench] {name} done in {metrics['wall_s']:.1f} s", flush=True)
    doc = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "total_wall_s": round(time.perf_counter() - t_all, 1),
        "results": results,
        "failed": failed,
    }
    out_path = Path(args.out)
    if args.only and out_path.exists():
        # a partial run replaces only its own benchmarks; each keeps the time it was measured
        old = json.loads(out_path.read_text())
        merged = {
            k: {**v, "measured_at": v.get("measured_at", old.get("measured_at"))}
            for k, v in old.get("results", {}).items()
        }
        for k, v in results.items():
            merged[k] = {**v, "measured_at": doc["measured_at"]}
        doc["results"] = merged
        doc["failed"] = sorted(set(old.get("failed", [])) - set(results) | set(failed))
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    width = max((len(k) for m in results.values() for k in m), default=10)
    print(f"\n{'benchmark':<10} {'metric':<{width}} value")
    for name, metrics in results.items():
        for key, value in metrics.items():
            print(f"{name:<10} {key:<{width}} {fmt(value)}")
    print(f"\nmachine: {doc['machine']}; total {doc['total_wall_s']} s; written {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
