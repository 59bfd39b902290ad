"""Errors the CLI prints without a traceback, in a module of their own so every command module shares one class."""

from __future__ import annotations


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""
