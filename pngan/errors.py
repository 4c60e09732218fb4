"""The kit's error types, and how a command reports them.

Each type is a mistake the user can fix (a bad file, setting or folder); its message names the
file or setting, the problem and the fix. The command line, `python -m pngan.params` and the
stage runner print such an error as one line on stderr and exit with code 2. Anything else that
escapes is a bug in the kit and keeps its traceback (so does everything with PNGAN_DEBUG=1).
"""

from __future__ import annotations

import os
import sys
from typing import Callable


class KitError(Exception):
    """A user error."""


class DataError(KitError, ValueError):
    """Bad input data (an image, a folder layout, a data set)."""


class ParamsError(KitError, KeyError):
    """A setting that is unknown, of the wrong type or out of range."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(KitError, ValueError):
    """A checkpoint or network file that is missing, unreadable, untrusted or does not fit."""


class RegistryError(KitError, ValueError):
    """An unknown network or noise model name, or arguments that do not fit it."""


class OutputError(KitError, FileExistsError):
    """An output that would overwrite or delete something the user owns."""


class TrainingDiverged(KitError, RuntimeError):
    """Too many consecutive non-finite training steps."""


# Reported as one line too: the kit raises these builtins for bad values and missing files.
USER_ERRORS = (KitError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def user_error_names() -> set[str]:
    """Class names of USER_ERRORS and their subclasses (a notebook kernel reports only names)."""
    names, todo = set(), list(USER_ERRORS)
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def one_line(message: object) -> str:
    return " ".join(str(message).split())


def report_user_errors(main: Callable[[], int], copy_to: str | os.PathLike | None = None) -> int:
    """Run a command's `main`; a user error becomes `error: <message>` on stderr (and in the file
    `copy_to`, when given) and exit code 2."""
    try:
        return main()
    except USER_ERRORS as err:
        if os.environ.get("PNGAN_DEBUG"):
            raise
        line = f"error: {one_line(err)}"
        print(line, file=sys.stderr)
        if copy_to:
            with open(copy_to, "a") as f:
                f.write(line + "\n")
        return 2
