"""`make bench`: run every benchmark in benchmarks/, write benchmarks/results.json, print a table."""

from __future__ import annotations

import sys


def main() -> int:
    print("no benchmarks yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
