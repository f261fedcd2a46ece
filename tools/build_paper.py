"""Build paper/retrosim.pdf: rerun the studies that are out of date, then compile with Typst."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typst

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "paper"


def main() -> int:
    t0 = time.perf_counter()
    out = PAPER / "retrosim.pdf"
    tmp = out.with_suffix(".pdf.tmp")
    typst.compile(str(PAPER / "retrosim.typ"), output=str(tmp), root=str(ROOT))
    tmp.replace(out)
    print(f"paper: compiled {out.relative_to(ROOT)} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
