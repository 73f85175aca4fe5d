"""The root of every error a user can cause (bad file, bad shape, bad option, unsupported layer).

The CLI turns these into one line on stderr and exit status 2; anything else is a bug and keeps
its traceback. Each package derives its own errors from ``InputError`` (``IRError``,
``NIRFormatError``, ``VideoError``, ``FrameShapeError``, ``TraceFormatError``, ...).
"""


class InputError(ValueError):
    """Invalid input from the user; the message says what was expected and what arrived."""
