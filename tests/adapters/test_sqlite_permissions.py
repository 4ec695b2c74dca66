"""SQLite database files are created readable and writable by their owner only."""

import os
import stat
import sys

import pytest

import taskflow as tf
from taskflow.adapters.sqlite import SqliteRepository
from taskflow.kinds.document import DocumentRequest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


@pytest.fixture
def loose_umask():
    # The usual umask: files SQLite creates itself would be 0644, readable by every user.
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_database_and_its_wal_and_shm_files_are_0600(tmp_path, loose_umask):
    path = tmp_path / "tasks.db"
    registry = tf.default_registry()
    repository = SqliteRepository(path, registry)
    service = tf.TaskService(
        registry=registry,
        repository=repository,
        notifier=tf.RecordingNotifier(),
        clock=tf.SystemClock(),
        ids=tf.UuidIds(),
    )
    draft = tf.NewTask("ISO 9001 certificate", "supco", DocumentRequest("ISO 9001"))
    service.open(tf.Actor("bea", "acme"), "document_request", draft)
    for name in ("tasks.db", "tasks.db-wal", "tasks.db-shm"):
        assert _mode(tmp_path / name) == 0o600, name
    repository.close()


def test_an_existing_database_keeps_the_mode_its_owner_gave_it(tmp_path, loose_umask):
    path = tmp_path / "shared.db"
    SqliteRepository(path, tf.default_registry()).close()
    os.chmod(path, 0o640)
    SqliteRepository(path, tf.default_registry()).close()
    assert _mode(path) == 0o640


def test_a_database_in_a_missing_directory_is_still_a_storage_error(tmp_path):
    with pytest.raises(tf.StorageError):
        SqliteRepository(tmp_path / "nowhere" / "tasks.db", tf.default_registry())
