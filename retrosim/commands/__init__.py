"""Subcommands of the ``retrosim`` command line, one module each."""
