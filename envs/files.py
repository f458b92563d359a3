"""Files every layer shares safely: atomic writes, inter-process locks and JSON records read back.

The one home of all three. ``envs`` is the lowest layer, so the object store, run folders, checkpoints and the
pipeline's records all write through here; nothing else renames temporary files or takes ``flock`` locks.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``: readers see the old
    file or the whole new one, never a part, and a failed ``write`` leaves ``path`` untouched.

    The temporary name keeps ``path``'s suffix, because some writers (``model.save``) append one when it is
    missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:  # the bytes reach the disk before the name points at them
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """``payload`` into ``path``, atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(payload))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """``data`` as indented JSON into ``path``, atomically (see :func:`atomic_write`)."""
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """The JSON in ``path``; a file that is not valid JSON (a hand edit, a merge conflict) raises a ``ValueError``
    naming it, which every CLI prints as one line.

    :param path: the file (a missing one raises ``FileNotFoundError``, as ``open`` does).
    :param what: what the file is, for the message (``"pipeline status"``).
    """
    try:
        return json.loads(Path(path).read_text())
    except ValueError as err:  # JSONDecodeError, or bytes that are not UTF-8
        raise ValueError(f"{path}: unreadable {what} ({err})") from None


@contextmanager
def file_lock(path: str | os.PathLike[str], blocking: bool = True) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path`` (created when missing) for the ``with`` block; across processes,
    only one holder at a time. With ``blocking=False`` a held lock raises ``BlockingIOError`` at once.

    The kernel releases the lock when the holder dies, so a killed process never leaves a stale lock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
