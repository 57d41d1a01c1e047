"""Atomic file writes: a reader sees the old file or the whole new one under the final name, never a part."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

#: Prefix of temp files; a run that was killed leaves only these behind, and they are safe to delete.
TMP_PREFIX = ".tmp-"


def atomic_write_bytes(path: str | Path, data: bytes | bytearray | memoryview, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``.

    The folder is created when missing. ``fsync=True`` also makes the bytes and the rename durable
    across a power cut; it is off by default because a dataset can always be regenerated and the
    sync costs more than the write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_replace(os.fspath(path), data, fsync=fsync)


def atomic_replace(path: str, data: bytes | bytearray | memoryview, *, fsync: bool = False) -> None:
    """`atomic_write_bytes` into a folder that exists, for a string path: no folder check and no
    ``Path`` objects, which cost as much as the write itself for a 3 KB classification patch."""
    folder, name = os.path.split(path)
    # Same folder, so os.replace is a rename on one filesystem; O_EXCL with a random suffix keeps
    # parallel writers of the same name from sharing a temp file. Mode 0o666 lets the umask decide,
    # as for any other file (mkstemp would leave the dataset readable by its owner only).
    tmp = os.path.join(folder, f"{TMP_PREFIX}{name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if fsync:
        _fsync_dir(Path(folder or "."))


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = False) -> None:
    """``atomic_write_bytes`` of ``text`` in UTF-8; newlines are written as given (no platform translation)."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def _fsync_dir(folder: Path) -> None:
    # The rename itself lives in the folder's entry table; without this a crash may forget it.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new_file(path: str, data: bytes | bytearray | memoryview) -> None:
    """Create ``path``, which must not exist yet, holding ``data``: for files inside a `staged_folder`,
    which no reader sees before it is complete, so a temp name and a rename per file are not needed
    (they double the cost of a small file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


@contextlib.contextmanager
def staged_folder(path: str | Path) -> Iterator[Path]:
    """A temp folder beside ``path`` to fill; on success it replaces ``path`` whole (any old folder
    there, with whatever it held, is removed), on failure it is removed. Readers see the old folder,
    for an instant none, then the new one: never one half written."""
    path = Path(path)
    token = f"{os.getpid()}.{secrets.token_hex(4)}"
    staging = path.with_name(f"{TMP_PREFIX}{path.name}.{token}")
    old = path.with_name(f"{TMP_PREFIX}{path.name}.old.{token}")
    staging.mkdir(parents=True)
    try:
        yield staging
        if path.exists():
            os.replace(path, old)
        os.replace(staging, path)
    except BaseException:
        if old.exists() and not path.exists():
            os.replace(old, path)  # the swap failed halfway: the old folder goes back
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old.is_symlink():
        old.unlink()  # a link to a folder elsewhere: the link goes, what it pointed to stays
    else:
        shutil.rmtree(old, ignore_errors=True)


def remove_temp_files(folder: Path) -> None:
    """Delete what a killed writer left in ``folder``: temp files and staged folders (`TMP_PREFIX`)."""
    for tmp in folder.glob(f"{TMP_PREFIX}*"):
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
