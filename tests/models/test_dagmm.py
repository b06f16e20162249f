"""DAGMM maths against a direct numpy implementation of FDAGMM eqs. (3)-(4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsim.models.dagmm import DAGMM, covariance_penalty, gmm_parameters, pool_gmm, sample_energy


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: torch's thread pool only adds spin-waits, badly so on a busy 2-core runner."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def numpy_gmm(gamma: np.ndarray, z: np.ndarray):
    phi = gamma.sum(0) / len(z)
    mu = np.stack([(gamma[:, k, None] * z).sum(0) / gamma[:, k].sum() for k in range(gamma.shape[1])])
    cov = np.stack(
        [
            sum(gamma[i, k] * np.outer(z[i] - mu[k], z[i] - mu[k]) for i in range(len(z))) / gamma[:, k].sum()
            for k in range(gamma.shape[1])
        ]
    )
    return phi, mu, cov


def numpy_energy(z: np.ndarray, phi, mu, cov) -> np.ndarray:
    out = []
    for zi in z:
        total = 0.0
        for k in range(len(phi)):
            d = zi - mu[k]
            total += phi[k] * np.exp(-0.5 * d @ np.linalg.inv(cov[k]) @ d) / np.sqrt(np.linalg.det(2 * np.pi * cov[k]))
        out.append(-np.log(total))
    return np.array(out)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 40), k=st.integers(1, 4), d=st.integers(1, 3))
def test_gmm_parameters_and_energy_match_numpy(seed: int, n: int, k: int, d: int) -> None:
    gen = np.random.default_rng(seed)
    z = gen.normal(size=(n, d))
    gamma = gen.dirichlet(np.ones(k), size=n)
    phi, mu, cov = gmm_parameters(torch.from_numpy(gamma), torch.from_numpy(z))
    ref = numpy_gmm(gamma, z)
    for got, want in zip((phi, mu, cov), ref):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-12)
    energy = sample_energy(torch.from_numpy(z), phi, mu, cov, eps=0.0)
    np.testing.assert_allclose(energy.numpy(), numpy_energy(z, *ref), rtol=1e-7, atol=1e-9)


def test_energy_is_finite_for_a_near_singular_covariance() -> None:
    z = torch.randn(64, 3, dtype=torch.float64)
    z[:, 2] = 1.0  # a cosine-similarity column that never varies
    gamma = torch.softmax(torch.randn(64, 4, dtype=torch.float64), 1)
    energy = sample_energy(z, *gmm_parameters(gamma, z), eps=1e-6)
    assert torch.isfinite(energy).all()


def test_energy_survives_a_slightly_indefinite_covariance() -> None:
    cov = torch.diag(torch.tensor([1.0, 1e-3, -1e-5], dtype=torch.float64))[None]  # float32 rounding can do this
    energy = sample_energy(torch.zeros(4, 3, dtype=torch.float64), torch.ones(1), torch.zeros(1, 3), cov, eps=1e-9)
    assert torch.isfinite(energy).all()


def test_pool_gmm_equals_the_estimate_on_the_union() -> None:
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    gamma = torch.softmax(torch.randn(50, 4, generator=gen, dtype=torch.float64), 1)
    parts = [gmm_parameters(gamma[s], z[s]) for s in (slice(0, 20), slice(20, 50))]
    pooled = pool_gmm(torch.tensor([0.4, 0.6]), *(torch.stack([p[i] for p in parts]) for i in range(3)))
    for got, want in zip(pooled, gmm_parameters(gamma, z)):
        torch.testing.assert_close(got, want)


def test_penalty_is_the_sum_of_inverse_diagonals() -> None:
    cov = torch.diag_embed(torch.tensor([[1.0, 2.0], [4.0, 0.5]]))
    assert float(covariance_penalty(cov)) == pytest.approx(1 + 0.5 + 0.25 + 2)


def test_paper_architecture_and_loss_terms() -> None:
    torch.manual_seed(0)
    model = DAGMM(120)
    widths = [m.out_features for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert widths == [60, 30, 10, 1]
    assert [m.out_features for m in model.decoder if isinstance(m, torch.nn.Linear)] == [10, 30, 60, 120]
    assert [type(m).__name__ for m in model.estimation] == ["Linear", "Tanh", "SeededDropout", "Linear"]
    x = torch.randn(32, 120)
    z, x_hat, gamma = model(x)
    assert z.shape == (32, 3) and x_hat.shape == x.shape
    torch.testing.assert_close(gamma.sum(1), torch.ones(32))
    loss = model.loss(x)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


def test_stored_mixture_survives_state_dict_and_scores_rank_outliers() -> None:
    torch.manual_seed(0)
    x = torch.randn(512, 8) * 0.1
    model = DAGMM(8, hidden=(6, 4), components=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    before = model.gmm_mu.clone()
    for _ in range(30):
        opt.zero_grad()
        model.loss(x).backward()
        opt.step()
    assert not torch.equal(before, model.gmm_mu)  # buffers track training batches
    model.fit_gmm(x)
    clone = DAGMM(8, hidden=(6, 4), components=2)
    clone.load_state_dict(model.state_dict())
    clone.eval()
    model.eval()
    torch.testing.assert_close(clone.scores(x), model.scores(x))
    outliers = torch.randn(16, 8) * 5
    scores = clone.scores(torch.cat([x, outliers]))
    assert scores[-16:].median() > scores[:512].median()


def test_threshold_flags_the_requested_share() -> None:
    scores = torch.arange(100, dtype=torch.float32)
    thr = DAGMM(4).threshold(scores, 0.2)
    assert int((scores > thr).sum()) == 20
