"""The retrosim exception family.

Every error a user can cause is an :class:`InputError`; every failed posterior is a
:class:`ConvergenceError`. The command line turns any :class:`RetrosimError` into one
readable message and exit code 2 (bad input) or 1 (internal failure).
"""

from __future__ import annotations

__all__ = ["ConvergenceError", "InputError", "RetrosimError"]


class RetrosimError(Exception):
    """Base class of every error raised on purpose by retrosim."""

    exit_code = 1


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

    exit_code = 2

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
    """Sampling finished but failed the convergence gate (R-hat, ESS or divergences)."""

    exit_code = 1

    def __init__(self, message, diagnostics=None):
        self.diagnostics = diagnostics
        super().__init__(message)
