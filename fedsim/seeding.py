"""One root seed fans out into independent, named random streams.

Every stream is derived from ``(root seed, purpose, *keys)`` through
:class:`numpy.random.SeedSequence`, so a stream does not depend on the order in
which other streams were drawn: client 3's batches in round 7 are the same
whether or not client 2 failed before it.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def purpose_key(purpose: str) -> int:
    """The entropy word that names a stream's purpose (its CRC-32)."""
    return zlib.crc32(purpose.encode())


def seed_sequence(root: int, purpose: str, *keys: int) -> np.random.SeedSequence:
    """The seed sequence of stream ``purpose`` for the given integer keys."""
    return np.random.SeedSequence([int(root), purpose_key(purpose), *map(int, keys)])


def rng(root: int, purpose: str, *keys: int) -> np.random.Generator:
    """A numpy generator for stream ``purpose`` (e.g. ``rng(seed, "failure", client)``)."""
    return np.random.default_rng(seed_sequence(root, purpose, *keys))


def torch_seed(root: int, purpose: str, *keys: int) -> int:
    """A 63-bit integer seed for a torch generator of stream ``purpose``."""
    return int(seed_sequence(root, purpose, *keys).generate_state(1, np.uint64)[0] >> np.uint64(1))


def torch_generator(root: int, purpose: str, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A seeded torch generator for stream ``purpose``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(torch_seed(root, purpose, *keys))
    return gen
