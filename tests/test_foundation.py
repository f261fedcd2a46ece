"""Foundation: command line, error family, argument checks, bootstrap, atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrosim import cli
from retrosim._checks import check_choice, check_range
from retrosim._io import atomic_path
from retrosim.errors import ConvergenceError, InputError, RetrosimError

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_version_matches_package(capsys):
    import retrosim

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"retrosim {retrosim.__version__}"


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_runs():
    exe = Path(sys.executable).with_name("retrosim")
    res = subprocess.run([exe, "--help"], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "simulate" in res.stdout


@pytest.mark.parametrize(
    ("exc", "code", "word"),
    [
        (InputError("bad speed", argument="speed_m_s"), 2, "input error"),
        (ConvergenceError("R-hat 1.2"), 3, "fit refused"),
        (ZeroDivisionError("boom"), 1, "bug in retrosim"),
    ],
)
def test_errors_become_one_message_and_exit_code(monkeypatch, capsys, exc, code, word):
    parser = cli.build_parser()
    args = parser.parse_args(["simulate"])

    def boom(_):
        raise exc

    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    args.func = boom
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args)
    assert cli.main([]) == code
    err = capsys.readouterr().err
    assert word in err and "Traceback" not in err


def test_debug_shows_traceback(monkeypatch):
    parser = cli.build_parser()
    args = parser.parse_args(["--debug", "simulate"])
    args.func = lambda _: 1 / 0
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args)
    with pytest.raises(ZeroDivisionError):
        cli.main([])


def test_input_error_names_location():
    err = InputError("expected m/s", file="trials.csv", row=4, column="speed_m_s")
    assert str(err) == "trials.csv, row 4, column 'speed_m_s': expected m/s"
    assert isinstance(err, RetrosimError) and isinstance(err, ValueError)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf, 13.0, [1.0, 2.0, -3.0]])
def test_check_range_rejects(bad):
    with pytest.raises(InputError, match=r"speed_m_s.*\(0, 12\] m/s"):
        check_range("speed_m_s", bad, 0, 12, "m/s")


def test_check_range_accepts_and_returns_array():
    out = check_range("mass_kg", [50, 80.5], 0, 300, "kg")
    np.testing.assert_array_equal(out, [50.0, 80.5])


def test_check_choice():
    assert check_choice("direction", ["forward", "backward"], ("forward", "backward")).size == 2
    with pytest.raises(InputError, match="'sideways'"):
        check_choice("direction", "sideways", ("forward", "backward"))


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("fail mid-write")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"


def test_find_python_fails_with_one_clear_sentence(tmp_path):
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run(
        ["bash", ROOT / "tools" / "find_python.sh"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if res.returncode == 0:  # a system python >= 3.12 in /usr/bin: the script rightly found it
        out = subprocess.run(
            [res.stdout.strip(), "-c", "import sys; print(sys.version_info >= (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        assert out.strip() == "True"
    else:
        assert res.stderr.count("\n") == 1 and "install Python 3.12" in res.stderr


@pytest.mark.skipif(not os.environ.get("PYENV_ROOT"), reason="pyenv not on this machine")
def test_find_python_uses_pyenv_when_not_on_path():
    pyenv_bin = Path(os.environ["PYENV_ROOT"]) / "bin"
    shims = Path(os.environ["PYENV_ROOT"]) / "shims"
    env = {
        "PATH": f"{pyenv_bin}:{shims}:/usr/bin:/bin",
        "PYENV_ROOT": os.environ["PYENV_ROOT"],
        "HOME": os.environ.get("HOME", "/root"),
    }
    res = subprocess.run(
        ["bash", ROOT / "tools" / "find_python.sh"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    ver = subprocess.run(
        [res.stdout.strip(), "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ver.stdout.strip() == "True"
