"""Errors the CLI reports as a message and exit code 2, without a traceback."""


class UserError(Exception):
    """A mistake in the user's input (config, paths, data) that the user can fix; the message says how."""


class OfflineError(UserError):
    """The Hugging Face hub is needed but unreachable; the message names the local alternative."""
