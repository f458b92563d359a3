"""How every command of the package reports a user's mistake: one line on stderr, exit status 2, no traceback.

Library code raises :class:`UserError` (or the ``FileNotFoundError`` / ``ValueError`` / ``KeyError`` it already
raises for bad input) with a message that names the file, flag or key at fault; each CLI's ``main`` is wrapped in
:func:`cli_main`, which turns those exceptions into ``error: <message>``. Anything else is a bug and keeps its
traceback. ``RESDEX_TRACEBACK=1`` shows the traceback of a user error too (to debug where it came from).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: the exit status of a user error (argparse's own for a bad flag)
USAGE_EXIT = 2
#: what a CLI reports as a user error: ours (a ``ValueError``), plus the kinds the library raises for a bad path,
#: value or name (an unknown object set or object is a ``KeyError`` naming it)
USER_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, ValueError, KeyError)


class UserError(ValueError):
    """A mistake in what the user gave (a flag, a config file or key, a run folder, a checkpoint), not a bug.

    :param message: one line naming the file, flag or key at fault, and what to do about it.
    """


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (a multi-line message is joined with ``; ``).

    :param err: the exception to describe.
    """
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)  # str() of a KeyError quotes it
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines) or type(err).__name__


def cli_main(main: Callable[P, R]) -> Callable[P, R | int]:
    """Wrap a CLI's ``main`` so that a user error (``USER_ERRORS``) prints ``error: <message>`` on stderr and
    returns exit status 2 (run it as ``sys.exit(main())``); any other exception passes unchanged.

    :param main: the command's entry point; its return value passes through unchanged.
    """

    @functools.wraps(main)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | int:
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as err:
            if os.environ.get("RESDEX_TRACEBACK") == "1":
                raise
            print(f"error: {one_line(err)}", file=sys.stderr)
            return USAGE_EXIT

    return wrapped


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number of at least 1 (``--max-envs 0`` would evaluate nothing).

    :param text: the flag's value as given.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
