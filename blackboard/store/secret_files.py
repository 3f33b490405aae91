"""Password files and the directories that hold them (store layer; imports errors only).

A password file is trusted only when this user could have written it and nobody else can
read or change it: a regular file (not a link, FIFO or device), owned by the current user,
with no group or other permission bits, holding a password of at least `MIN_PASSWORD`
characters on its first line. Its directory is made (or tightened to) mode 0700. New files
are created with ``O_EXCL | O_NOFOLLOW`` and mode 0600, so a planted link or file is never
written through. Used by `acl.write_secrets` and by the servers this package starts.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from blackboard.errors import SecretFileError

__all__ = ["MIN_PASSWORD", "private_directory", "read_password_file", "write_password_file"]

MIN_PASSWORD = 16


def private_directory(directory: Path) -> Path:
    """Create `directory` (mode 0700), or check an existing one: a real directory owned by
    this user, whose group/other permissions are removed. Raises SecretFileError."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = directory.lstat()
    except OSError as exc:
        raise SecretFileError(str(directory), f"cannot create the directory: {exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SecretFileError(str(directory), "is not a directory (a symbolic link?)")
    if st.st_uid != os.getuid():
        raise SecretFileError(
            str(directory), f"is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        try:
            directory.chmod(0o700)
        except OSError as exc:
            raise SecretFileError(
                str(directory),
                f"has group/other permissions ({stat.S_IMODE(st.st_mode):04o}) and cannot be "
                f"made 0700: {exc}",
            ) from None
    return directory


def read_password_file(path: Path, min_length: int = MIN_PASSWORD) -> str:
    """The password on the first line of `path`, after checking the file (see the module
    docstring). Raises SecretFileError naming the file and what is wrong with it."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if os.path.islink(path):
            raise SecretFileError(name, "is a symbolic link, not a password file") from None
        raise SecretFileError(name, f"cannot be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise SecretFileError(name, "is not a regular file")
        if st.st_uid != os.getuid():
            raise SecretFileError(
                name, f"is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})"
            )
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise SecretFileError(
                name,
                f"is readable or writable by group or others (mode {mode:04o}): its password "
                "may be known; delete the file for a new one (or chmod 600 it if it is safe)",
            )
        text = f.read(4096).decode(errors="replace")
    lines = text.splitlines()
    password = lines[0].strip() if lines else ""
    if len(password) < min_length:
        raise SecretFileError(
            name,
            f"holds a password of {len(password)} characters; at least {min_length} are "
            "needed (delete the file for a new one)",
        )
    return password


def write_password_file(path: Path, password: str, *, replace: bool = False) -> Path:
    """Write `password` to a new file `path` with mode 0600. Raises FileExistsError when it
    exists (unless `replace`: then an existing regular file of this user is overwritten),
    SecretFileError when it cannot be written safely."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    flags |= os.O_TRUNC if replace else os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise
    except OSError as exc:
        raise SecretFileError(str(path), f"cannot be written: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            raise SecretFileError(str(path), "is not a regular file of this user")
        os.fchmod(f.fileno(), 0o600)
        f.write(password + "\n")
    return path
