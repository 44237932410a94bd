"""Files and folders the platform writes that hold secrets or personal data (the instance
folder, the SQLite database, the secret key, import error reports, exports written by the
CLI): created readable and writable by their owner only, whatever the process umask."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike) -> Path:
    """Create the folder (and its parents) if needed; the folder itself owner-only."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _chmod(path, DIR_MODE)
    return path


def open_private(path: str | os.PathLike, mode: str = "w", **kwargs):
    """`open(path, mode)` for writing, the file created (or truncated) owner-only."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an existing file keeps its old mode otherwise
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def write_private(path: str | os.PathLike, text: str) -> None:
    with open_private(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def touch_private(path: str | os.PathLike) -> None:
    """Make sure the file exists and is owner-only (before a library creates it)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    _chmod(Path(path), FILE_MODE)


def create_exclusive(path: str | os.PathLike, text: str) -> bool:
    """Write `text` to a new owner-only file at `path` in one step; False (and nothing
    written) if the file already exists, e.g. another process created it first."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_private(tmp, text)
    try:
        os.link(tmp, path)  # fails if the path exists: never a half-written file
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _chmod(path: Path, mode: int) -> None:
    # A folder or file owned by someone else (a shared mount) is left as it is.
    with contextlib.suppress(PermissionError):
        os.chmod(path, mode)
