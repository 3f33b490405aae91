"""Password files for ACL users: a private directory, and an existing file reused only when
nobody else could have read or planted it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from blackboard.control.acl import AclUser, password_hash, write_secrets
from blackboard.errors import BlackboardError, SecretFileError
from blackboard.store.secret_files import read_password_file

USERS = [AclUser("bb:ops:role:triage", "test user", ("~bb:{ops}:*",))]
FILE = "bb:ops:role:triage.password"


def test_the_directory_is_created_private_and_files_are_0600(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "secrets"
    hashes = write_secrets(USERS, directory)
    assert directory.stat().st_mode & 0o777 == 0o700
    path = directory / FILE
    assert path.stat().st_mode & 0o777 == 0o600
    password = path.read_text().strip()
    assert len(password) >= 16 and hashes == {USERS[0].name: password_hash(password)}
    assert write_secrets(USERS, directory) == hashes  # a safe file is reused


def test_an_existing_open_directory_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    directory.mkdir(mode=0o755)
    directory.chmod(0o777)
    write_secrets(USERS, directory)
    assert directory.stat().st_mode & 0o777 == 0o700


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(SecretFileError, match="not a directory"):
        write_secrets(USERS, tmp_path / "link")


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o620, 0o640])
def test_a_group_or_world_accessible_password_file_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "secrets"
    directory.mkdir(mode=0o700)
    path = directory / FILE
    path.write_text("a-long-enough-password-123456\n")
    path.chmod(mode)
    with pytest.raises(SecretFileError) as info:
        write_secrets(USERS, directory)
    assert isinstance(info.value, BlackboardError)
    assert info.value.path == str(path) and str(path) in str(info.value)
    assert "group or others" in str(info.value)


def test_a_short_password_a_link_and_a_fifo_are_refused(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    directory.mkdir(mode=0o700)
    path = directory / FILE
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(SecretFileError, match="at least 16"):
        write_secrets(USERS, directory)
    path.unlink()
    target = tmp_path / "elsewhere"
    target.write_text("a-long-enough-password-123456\n")
    target.chmod(0o600)
    path.symlink_to(target)
    with pytest.raises(SecretFileError, match="symbolic link"):
        write_secrets(USERS, directory)
    assert target.read_text() == "a-long-enough-password-123456\n"  # never written through
    path.unlink()
    os.mkfifo(path, 0o600)
    with pytest.raises(SecretFileError, match="not a regular file"):
        write_secrets(USERS, directory)  # and does not hang on the FIFO


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a file to another user")
def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.password"
    path.write_text("a-long-enough-password-123456\n")
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    with pytest.raises(SecretFileError, match="owned by uid 65534"):
        read_password_file(path)
