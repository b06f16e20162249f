"""Deep Autoencoding Gaussian Mixture Model (Zong et al., ICLR 2018), as used by FDAGMM.

A compression autoencoder (KDDCUP: d-60-30-10-1, tanh, and its mirror) yields a
latent code z_c and two reconstruction features, the relative Euclidean distance
and the cosine similarity; an estimation network (tanh, dropout, softmax over K
components) turns z = [z_c, z_r] into memberships γ, from which the batch GMM
parameters (φ, μ, Σ) and each sample's energy follow (FDAGMM eqs. 1-5).

Scoring needs GMM parameters that outlive a batch. They are kept as buffers
(φ, μ, Σ), exponential moving averages of the batch estimates during training, like
BatchNorm's running statistics, so FedAvg of the whole state averages them too and
``scores`` works on any model restored from a state dict. :meth:`DAGMM.fit_gmm` sets
them exactly from a data set (the DAGMM practice after training), and
:func:`pool_gmm` combines per-client estimates exactly, which is how a federation
can agree on the mixture of its pooled data without sharing rows. Σ is stored
centred, in float32, so no moment subtraction loses precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from fedsim.models.base import AnomalyModel
from fedsim.models.dropout import SeededDropout


def gmm_parameters(gamma: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. (3): φ_k = mean γ_k, μ_k and Σ_k the γ_k-weighted mean and (centred) covariance."""
    phi = gamma.mean(0)
    mass = gamma.sum(0)
    mu = gamma.T @ z / mass[:, None]
    centred = z[None, :, :] - mu[:, None, :]  # (K, n, d)
    cov = (gamma.T[:, :, None] * centred).transpose(1, 2) @ centred / mass[:, None, None]
    return phi, mu, cov


def pool_gmm(
    weights: torch.Tensor, phis: torch.Tensor, mus: torch.Tensor, covs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The eq.-(3) mixture of a union of data sets from each set's own (φ, μ, Σ).

    ``weights`` (S,) are the sets' row shares n_s/n; ``phis`` (S, K), ``mus`` (S, K, d),
    ``covs`` (S, K, d, d). Exact, by the law of total covariance; computed in float64.
    """
    w, phis, mus, covs = weights.double(), phis.double(), mus.double(), covs.double()
    mass = w[:, None] * phis  # (S, K): share of all rows' membership in component k
    phi = mass.sum(0)
    share = mass / phi.clamp_min(1e-300)
    mu = torch.einsum("sk,ski->ki", share, mus)
    spread = mus - mu[None]
    cov = torch.einsum("sk,skij->kij", share, covs + spread[..., :, None] * spread[..., None, :])
    return phi, mu, cov


def _cholesky(cov: torch.Tensor, eps: float, tries: int = 8) -> torch.Tensor:
    """Cholesky factor of Σ + jitter·I, raising the jitter tenfold until every Σ_k factors."""
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    jitter = max(eps, 1e-12)
    for _ in range(tries):
        chol, info = torch.linalg.cholesky_ex(cov + jitter * eye)
        if not bool(info.any()):
            return chol
        jitter *= 10.0
    raise ValueError(f"GMM covariance not positive definite even with jitter {jitter:g} (NaN in training?)")


def sample_energy(
    z: torch.Tensor, phi: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Eq. (4): E(z) = -log Σ_k φ_k N(z; μ_k, Σ_k), per row.

    Computed in float64 through a Cholesky factor of Σ_k + εI (ε raised only if a
    factorisation fails; no explicit inverse or determinant) and a log-sum-exp over
    components, so neither a near-singular covariance nor a tiny density overflows.
    """
    z64, mu64 = z.double(), mu.double()
    d = z.shape[1]
    chol = _cholesky(cov.double(), eps)  # (K, d, d)
    diff = (z64[None, :, :] - mu64[:, None, :]).transpose(1, 2)  # (K, d, n)
    solved = torch.linalg.solve_triangular(chol, diff, upper=False)
    mahalanobis = (solved**2).sum(1)  # (K, n)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)  # (K,)
    log_norm = -0.5 * (mahalanobis + log_det[:, None] + d * math.log(2 * math.pi))
    log_phi = torch.log(phi.double().clamp_min(1e-300))
    return -torch.logsumexp(log_phi[:, None] + log_norm, dim=0).to(z.dtype)


def covariance_penalty(cov: torch.Tensor) -> torch.Tensor:
    """P(Σ) = Σ_k Σ_j 1/Σ_k[j, j]: keeps a component from collapsing onto a point."""
    return (1.0 / torch.diagonal(cov, dim1=1, dim2=2)).sum()


def _mlp(widths: Sequence[int], dropout: float = 0.0, dropout_after: int = -1) -> nn.Sequential:
    """Linear layers with tanh between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
            if i == dropout_after and dropout > 0:
                layers.append(SeededDropout(dropout))
    return nn.Sequential(*layers)


class DAGMM(AnomalyModel):
    """Compression network + estimation network; the anomaly score is the sample energy."""

    def __init__(
        self,
        num_features: int,
        *,
        hidden: Sequence[int] = (60, 30, 10),
        latent: int = 1,
        estimation_hidden: int = 10,
        components: int = 4,
        dropout: float = 0.5,
        lambda_energy: float = 0.1,
        lambda_cov: float = 0.005,
        gmm_momentum: float = 0.1,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if not 0.0 < gmm_momentum <= 1.0:
            raise ValueError(f"model.gmm_momentum must be in (0, 1] (got {gmm_momentum})")
        widths = (num_features, *hidden, latent)
        self.encoder = _mlp(widths)
        self.decoder = _mlp(widths[::-1])
        zdim = latent + 2
        self.estimation = _mlp((zdim, estimation_hidden, components), dropout, dropout_after=0)
        self.lambda_energy, self.lambda_cov = lambda_energy, lambda_cov
        self.gmm_momentum, self.eps = gmm_momentum, eps
        # A standard-normal blob until training supplies real estimates.
        self.register_buffer("gmm_phi", torch.full((components,), 1.0 / components))
        self.register_buffer("gmm_mu", torch.zeros(components, zdim))
        self.register_buffer("gmm_cov", torch.eye(zdim).repeat(components, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latent z = [z_c, relative distance, cosine], reconstruction x', memberships γ."""
        # Network outputs come back in x's dtype: under bf16 autocast only the layers run
        # in bfloat16; distances, memberships and the float64 mixture maths do not.
        zc = self.encoder(x).to(x.dtype)
        x_hat = self.decoder(zc).to(x.dtype)
        distance = (x - x_hat).norm(dim=1) / x.norm(dim=1).clamp_min(1e-12)
        cosine = F.cosine_similarity(x, x_hat, dim=1, eps=1e-12)
        z = torch.cat([zc, distance[:, None], cosine[:, None]], dim=1)
        gamma = torch.softmax(self.estimation(z).to(x.dtype), dim=1)
        return z, x_hat, gamma

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. (5): ‖x − x'‖² + λ1·E(z) (batch means) + λ2·P(Σ); ``y`` is ignored."""
        z, x_hat, gamma = self(x)
        phi, mu, cov = gmm_parameters(gamma.double(), z.double())  # float64: tiny variances survive
        energy = sample_energy(z, phi, mu, cov, self.eps)
        if self.training:
            self._track(phi.detach(), mu.detach(), cov.detach())
        reconstruction = ((x - x_hat) ** 2).mean()
        penalty = covariance_penalty(cov).to(x.dtype)
        return reconstruction + self.lambda_energy * energy.mean() + self.lambda_cov * penalty

    @torch.no_grad()
    def _track(self, phi: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor) -> None:
        m = self.gmm_momentum
        for buf, batch in zip((self.gmm_phi, self.gmm_mu, self.gmm_cov), (phi, mu, cov)):
            buf.mul_(1.0 - m).add_(batch.to(buf.dtype), alpha=m)

    def gmm(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The stored mixture (φ, μ, Σ) used for scoring."""
        return self.gmm_phi, self.gmm_mu, self.gmm_cov

    @torch.no_grad()
    def estimate_gmm(self, x: torch.Tensor, batch_size: int = 8192) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eq. (3) over a whole data set (eval mode, no dropout), pooled batch by batch in float64."""
        was_training = self.training
        self.eval()
        parts = []
        for start in range(0, len(x), batch_size):
            z, _, gamma = self(x[start : start + batch_size])
            parts.append((len(z), *gmm_parameters(gamma.double(), z.double())))
        self.train(was_training)
        sizes = torch.tensor([p[0] for p in parts], dtype=torch.float64)
        return pool_gmm(sizes / sizes.sum(), *(torch.stack([p[i] for p in parts]) for i in (1, 2, 3)))

    @torch.no_grad()
    def set_gmm(self, phi: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor) -> None:
        """Overwrite the stored mixture (e.g. with :func:`pool_gmm` of the clients' estimates)."""
        self.gmm_phi.copy_(phi)
        self.gmm_mu.copy_(mu)
        self.gmm_cov.copy_(cov)

    def fit_gmm(self, x: torch.Tensor, batch_size: int = 8192) -> None:
        """Set the stored mixture to the one estimated on ``x`` (as DAGMM does after training)."""
        self.set_gmm(*self.estimate_gmm(x, batch_size))

    @torch.no_grad()
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Sample energy under the stored mixture; higher = more anomalous."""
        z, _, _ = self(x)
        phi, mu, cov = self.gmm()
        return sample_energy(z, phi, mu, cov, self.eps)

    def threshold(self, train_scores: torch.Tensor, anomaly_ratio: float) -> float:
        """Energy percentile that flags the ``anomaly_ratio`` share of the given scores."""
        if not 0.0 < anomaly_ratio < 1.0:
            raise ValueError(f"anomaly_ratio must be in (0, 1) (got {anomaly_ratio})")
        return float(torch.quantile(train_scores.double().flatten(), 1.0 - anomaly_ratio))


@dataclass
class DAGMMConfig:
    """Config of :class:`DAGMM` (hydra ``model=dagmm``); ``num_features`` comes from the data."""

    _target_: str = "fedsim.models.dagmm.DAGMM"
    hidden: list[int] = field(default_factory=lambda: [60, 30, 10])
    """Encoder widths after the input (decoder mirrors them); KDDCUP: 60-30-10."""
    latent: int = 1
    """Width of the code z_c."""
    estimation_hidden: int = 10
    """Hidden width of the estimation network."""
    components: int = 4
    """Mixture components K (KDDCUP: 4)."""
    dropout: float = 0.5
    """Dropout in the estimation network."""
    lambda_energy: float = 0.1
    """λ1, weight of the mean sample energy."""
    lambda_cov: float = 0.005
    """λ2, weight of the covariance-diagonal penalty."""
    gmm_momentum: float = 0.1
    """EMA factor of the stored (φ, μ, Σ) per training batch (1 = last batch only)."""
    eps: float = 1e-6
    """Added to covariance diagonals before the Cholesky factorisation."""
