"""Errors the library raises; commands turn them into one-line CommandErrors."""


class Error(Exception):
    """Base of every tripleo-containers error; str() is the user's message."""


class InputError(Error):
    """Bad user input: a file, option or value that must be fixed by the user."""
