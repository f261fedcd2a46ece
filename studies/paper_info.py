"""Values about the build itself: the package version the manuscript was made with."""

from __future__ import annotations

import _common

import retrosim

INPUTS = ["retrosim._version"]
OUTPUTS = ["results/values/paper_info.json"]


def main() -> None:
    _common.setup("paper_info")
    _common.write_values("paper_info", {"version": retrosim.__version__})


if __name__ == "__main__":
    main()
