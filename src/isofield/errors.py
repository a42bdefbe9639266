"""User-facing errors.

Every problem caused by the user's input (a missing or corrupt file, NaN coordinates, a wrong
array shape, an unknown config key) raises :class:`InputError` with a one-line message that
names the file or argument and the problem. The CLI prints it and exits with code 2, without a
traceback and without writing any file.
"""


class InputError(ValueError):
    """Bad user input; the message is one line meant for the user."""
