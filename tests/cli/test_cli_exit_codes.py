"""Exit codes of the command line: every kind of failure has its own documented code."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import retrosim.cli.fit as fit_command
from retrosim.cli import build_parser, main
from retrosim.config import DATA_DIR
from retrosim.errors import (
    EXIT_CODES,
    EXIT_CONVERGENCE,
    EXIT_INPUT,
    EXIT_INTERNAL,
    ConvergenceError,
    InputError,
    RetrosimError,
)

TRIALS = DATA_DIR / "examples" / "synthetic_trials.csv"


def stuck_chains():
    """Two chains stuck 50 posterior sds apart: R-hat far above 1.01, ESS far below 400."""
    rng = np.random.default_rng(0)
    mu = np.stack([rng.normal(0.0, 0.1, 50), rng.normal(5.0, 0.1, 50)])
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"mu": (("chain", "draw"), mu)}),
            "sample_stats": xr.Dataset(
                {"diverging": (("chain", "draw"), np.zeros(mu.shape, bool))}
            ),
        }
    )


def test_codes_are_distinct_and_documented_in_help(capsys):
    assert len(set(EXIT_CODES)) == len(EXIT_CODES) == 4
    assert (EXIT_INTERNAL, EXIT_INPUT, EXIT_CONVERGENCE) == (1, 2, 3)
    assert RetrosimError.exit_code == EXIT_INTERNAL
    assert InputError.exit_code == EXIT_INPUT
    assert ConvergenceError.exit_code == EXIT_CONVERGENCE
    help_text = " ".join(build_parser().format_help().split())  # argparse re-wraps the epilog
    assert (
        "exit codes: 0 success, 1 internal failure, 2 bad usage or bad input, 3 fit refused "
        in (help_text)
    )
    assert "convergence gate" in help_text


def test_fit_refused_by_the_gate_exits_3(monkeypatch, capsys):
    """``retrosim fit`` on valid trials whose posterior fails the real gate: code 3, one line."""
    from retrosim.bayes import sampling

    gates = []

    def fit_trials(data, *, gate, **kwargs):
        gates.append(gate)
        idata = stuck_chains()
        sampling.apply_gate(idata, sampling.diagnose(idata, sampler="test"), gate)
        raise AssertionError("the gate should have refused this posterior")

    monkeypatch.setattr("retrosim.trials.fit.fit_trials", fit_trials)
    code = main(["fit", str(TRIALS), "--outcome", "energy_w"])
    err = capsys.readouterr().err
    assert gates == ["raise"]  # the gate is on unless --allow-unconverged
    assert code == EXIT_CONVERGENCE == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("retrosim: fit refused: posterior failed the convergence gate: ")
    assert "R-hat" in lines[0] and "ESS" in lines[0]
    assert "bug" not in err


@pytest.mark.parametrize(
    ("error", "code", "kind"),
    [
        (
            InputError("expected a positive number [m/s]", argument="--speed"),
            EXIT_INPUT,
            "input error",
        ),
        (
            ConvergenceError("posterior failed the convergence gate: R-hat 1.2 > 1.01"),
            3,
            "fit refused",
        ),
        (RetrosimError("could not write results"), EXIT_INTERNAL, "error"),
        (RuntimeError("unexpected"), EXIT_INTERNAL, "error"),
    ],
)
def test_each_error_kind_has_its_code(monkeypatch, capsys, error, code, kind):
    def run(args):
        raise error

    monkeypatch.setattr(fit_command, "run", run)
    assert main(["fit"]) == code
    err = capsys.readouterr().err
    assert err.startswith(f"retrosim: {kind}: "), err
    # only an error that is not retrosim's own is reported as a bug
    assert ("this is a bug in retrosim" in err) == (not isinstance(error, RetrosimError))
