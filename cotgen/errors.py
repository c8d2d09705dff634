"""The one error type that means "the user's input is wrong"."""


class InputError(ValueError):
    """Bad user input: a malformed file, an unknown name, a missing folder.

    The message is one line that names the file (or argument) and the problem; the CLI prints it
    and exits with status 2.
    """
