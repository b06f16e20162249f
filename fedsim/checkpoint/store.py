"""Checkpoint storage: real serialisation, a checksum, atomic files, safe loading.

A checkpoint is a dict of tensors and numbers serialised with ``torch.save``. Its
SHA-256 travels with it (first line of the file on disk), so a truncated or
bit-flipped checkpoint is detected on load instead of silently restoring garbage.
Loading uses ``torch.load(..., weights_only=True)``: a checkpoint file cannot run code.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from fedsim.errors import FedsimError
from fedsim.results import atomic_write


class CheckpointCorrupt(FedsimError):
    """A stored checkpoint failed its checksum or could not be deserialised."""


def serialize(payload: dict) -> bytes:
    """The bytes ``torch.save`` writes for ``payload``."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


_HEADER = 65  # bytes of the first line: 64 hex digits and a newline


def _header(blob: bytes) -> bytes:
    """The first line of a stored checkpoint: the SHA-256 of the payload that follows it."""
    return hashlib.sha256(blob).hexdigest().encode() + b"\n"


def _unframe(key: str, framed: bytes) -> dict:
    digest, sep, blob = framed.partition(b"\n")
    return _verified(key, digest + sep, blob)


def _verified(key: str, header: bytes, blob: bytes) -> dict:
    if not header.endswith(b"\n") or _header(blob) != header:
        raise CheckpointCorrupt(f"checkpoint {key!r} failed its SHA-256 check (truncated or modified); falling back")
    try:
        return torch.load(io.BytesIO(blob), weights_only=True)
    except Exception as exc:  # a checksum-valid but unreadable payload
        raise CheckpointCorrupt(f"checkpoint {key!r} could not be loaded ({type(exc).__name__}); falling back") from None


def _write_framed(path: Path, payload: dict) -> None:
    """``torch.save`` straight into the file after a placeholder first line, then the checksum of what it wrote
    into that line: a snapshot of a million clients' updates is never held as bytes as well."""
    with path.open("w+b") as f:
        f.write(b"0" * (_HEADER - 1) + b"\n")
        torch.save(payload, f)
        f.seek(_HEADER)
        digest = hashlib.sha256()
        while chunk := f.read(1 << 24):
            digest.update(chunk)
        f.seek(0)
        f.write(digest.hexdigest().encode())


class MemoryStore:
    """Checkpoints held as checksummed bytes in memory (the default: fast, still real)."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def save(self, key: str, payload: dict) -> int:
        """Serialise and keep ``payload``; returns its size in bytes."""
        blob = serialize(payload)
        self._blobs[key] = _header(blob) + blob
        return len(blob)

    def load(self, key: str) -> dict | None:
        """The payload saved under ``key``, ``None`` if there is none; raises CheckpointCorrupt."""
        framed = self._blobs.get(key)
        return None if framed is None else _unframe(key, framed)

    def drop(self, key: str) -> None:
        """Forget ``key`` (a checkpoint superseded by a finished round)."""
        self._blobs.pop(key, None)

    def clear(self) -> None:
        """Forget every checkpoint."""
        self._blobs.clear()


class DiskStore(MemoryStore):
    """Checkpoints as files ``<dir>/<key>.ckpt``, each written atomically."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Where ``key`` lives on disk."""
        return self.directory / f"{key}.ckpt"

    def save(self, key: str, payload: dict) -> int:
        """Serialise ``payload`` to ``<key>.ckpt`` via a temporary file and a rename."""
        path = atomic_write(self.path(key), lambda p: _write_framed(p, payload))
        return path.stat().st_size - _HEADER

    def load(self, key: str) -> dict | None:
        """Read and verify ``<key>.ckpt``."""
        path = self.path(key)
        if not path.is_file():
            return None
        with path.open("rb") as f:  # the header, then the payload: a snapshot of a million clients is not copied twice
            header = f.readline(_HEADER)
            return _verified(key, header, f.read())

    def drop(self, key: str) -> None:
        """Delete ``<key>.ckpt``."""
        self.path(key).unlink(missing_ok=True)

    def clear(self) -> None:
        """Delete every ``*.ckpt`` file in the directory."""
        for path in self.directory.glob("*.ckpt"):
            path.unlink(missing_ok=True)
