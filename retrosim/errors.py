"""The retrosim exception family.

Every error a user can cause is an :class:`InputError`; every failed posterior is a
:class:`ConvergenceError`. The command line turns any :class:`RetrosimError` into one
readable message and the exit code of its class (:data:`EXIT_CODES`): 2 bad input, 3 a fit
refused by the convergence gate, 1 internal failure.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "EXIT_CONVERGENCE",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "ConvergenceError",
    "InputError",
    "RetrosimError",
]

#: Exit code of the command line for an internal failure (a bug, or an unexpected error).
EXIT_INTERNAL = 1
#: Exit code for bad usage or bad input (:class:`InputError`).
EXIT_INPUT = 2
#: Exit code for a fit refused by the convergence gate (:class:`ConvergenceError`).
EXIT_CONVERGENCE = 3
#: Every exit code of the command line and what it means (``retrosim --help`` lists them).
EXIT_CODES = {
    0: "success",
    EXIT_INTERNAL: "internal failure",
    EXIT_INPUT: "bad usage or bad input",
    EXIT_CONVERGENCE: "fit refused by the convergence gate (R-hat, ESS or divergences)",
}


class RetrosimError(Exception):
    """Base class of every error raised on purpose by retrosim."""

    exit_code = EXIT_INTERNAL


class InputError(RetrosimError, ValueError):
    """Bad user input: an argument, a file, a row or a column that is not as expected.

    Parameters
    ----------
    message : str
        What is wrong and what was expected, with units.
    file, row, column : optional
        Where the problem is. ``row`` is the 1-based data row (header excluded) as a
        spreadsheet user counts it, or the index label for a DataFrame.
    argument : str, optional
        The name of the offending function argument or command-line option.
    """

    exit_code = EXIT_INPUT

    def __init__(self, message, *, file=None, row=None, column=None, argument=None):
        self.file, self.row, self.column, self.argument = file, row, column, argument
        self.message = message
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        if argument is not None:
            where.append(f"argument '{argument}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConvergenceError(RetrosimError):
    """Sampling finished but failed the convergence gate (R-hat, ESS or divergences).

    The command line reports it as a refused fit, with its own exit code
    (:data:`EXIT_CONVERGENCE`, 3), not as an internal failure.
    """

    exit_code = EXIT_CONVERGENCE

    def __init__(self, message, diagnostics=None):
        self.diagnostics = diagnostics
        super().__init__(message)
