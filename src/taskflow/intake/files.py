"""The file-storage port intake stores attachments through: bytes in, a `FileRef` out."""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

from taskflow.domain.values import FileRef
from taskflow.errors import InvalidPayload

__all__ = ["FileStorage", "InMemoryFileStorage"]


@runtime_checkable
class FileStorage(Protocol):
    """Keeps file contents for the host; taskflow keeps only the reference it returns."""

    def store(self, name: str, media_type: str, content: bytes) -> FileRef:
        """Store `content` and return its reference (name, media type, size, digest, key)."""
        ...


class InMemoryFileStorage:
    """Files kept in memory by content digest (the same bytes are stored once)."""

    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}

    def store(self, name: str, media_type: str, content: bytes) -> FileRef:
        """Keep `content` under its SHA-256 digest and return the reference."""
        if not isinstance(content, bytes):
            msg = f"InMemoryFileStorage.store needs bytes, got {type(content).__name__}"
            raise InvalidPayload(msg, field="content")
        digest = hashlib.sha256(content).hexdigest()
        key = f"memory/{digest}"
        self._files.setdefault(key, content)
        return FileRef(name, media_type, len(content), f"sha256:{digest}", key)

    def read(self, storage_key: str) -> bytes:
        """Return the bytes stored under `storage_key`."""
        try:
            return self._files[storage_key]
        except KeyError:
            msg = f"no file is stored under {storage_key!r}"
            raise InvalidPayload(msg, field="storage_key") from None

    def __len__(self) -> int:
        return len(self._files)
