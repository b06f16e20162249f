"""Short noisy waveforms: which shape is it (3 classes), or what is its frequency (regression)?"""

from __future__ import annotations

import numpy as np

from fedsim.data import Dataset

SHAPES = ("sine", "square", "sawtooth")


def make_waves(
    *, n_samples: int = 1200, length: int = 32, noise: float = 0.5, target: str = "shape", test_fraction: float = 0.25, seed: int = 0
) -> Dataset:
    """``n_samples`` sequences of ``length`` steps, each one waveform with a random frequency and phase plus noise.

    ``target="shape"`` labels each row with its waveform (int64, 0..2: ``task=classification``);
    ``target="frequency"`` gives its frequency in cycles per sequence (float32: ``task=regression``).
    ``seed`` is fedsim's ``run.seed``, offered because the signature names it.
    """
    if target not in ("shape", "frequency"):
        raise ValueError(f"data.source.target={target!r} must be shape or frequency")
    g = np.random.default_rng(seed)
    shape = g.integers(0, len(SHAPES), n_samples)
    freq = g.uniform(1.0, 4.0, n_samples)
    phase = g.uniform(0.0, 1.0, n_samples)
    cycles = freq[:, None] * np.linspace(0.0, 1.0, length, endpoint=False)[None, :] + phase[:, None]
    frac = cycles % 1.0
    waves = np.stack([np.sin(2 * np.pi * cycles), np.where(frac < 0.5, 1.0, -1.0), 2 * frac - 1])  # (shape, row, step)
    x = (waves[shape, np.arange(n_samples)] + noise * g.standard_normal((n_samples, length))).astype(np.float32)
    y = shape.astype(np.int64) if target == "shape" else freq.astype(np.float32)
    test = g.random(n_samples) < test_fraction
    return Dataset(
        x_train=x[~test], y_train=y[~test], x_test=x[test], y_test=y[test],
        category_train=np.asarray(SHAPES)[shape[~test]], category_test=np.asarray(SHAPES)[shape[test]],  # data.partition=dirichlet splits by shape
        name="waves",
    )  # fmt: skip
