"""The vector quantiser of VQ-VAE, with a codebook learnt by exponential moving averages.

Each vector of an encoder's output map is replaced by its nearest codebook vector (van den Oord
et al. 2017, "Neural discrete representation learning"). The codebook is not trained by
gradients but by an exponential moving average (EMA) of the encoder outputs assigned to each code
(their appendix A.1; Razavi et al. 2019), a running k-means. Codes that nobody picks for a while
are restarted on random encoder outputs (Dhariwal et al. 2020, Jukebox), so none stays dead.

Distances and the EMA sums are always computed in float32, even under ``torch.autocast``: in
half precision a near tie between two codes can flip the ``argmin``, and the running sums lose
their small updates or overflow. A training step reads nothing back to the host (no ``.item()``,
no Python ``if`` on a tensor), so a GPU never waits for it.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class Quantised(NamedTuple):
    quantised: torch.Tensor  # (B, D, H, W) the chosen codebook vectors (straight-through)
    codes: torch.Tensor  # (B, H, W) long, the indices into the codebook
    commitment: torch.Tensor  # scalar, β · mean (z - sg(e))², β = commitment_weight


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> float:
    """Fraction of the codebook used at least once in ``codes``."""
    return torch.bincount(codes.flatten(), minlength=codebook_size).gt(0).float().mean().item()


def perplexity(codes: torch.Tensor, codebook_size: int) -> float:
    """exp(entropy) of the code histogram: the number of equally used codes it is worth."""
    p = torch.bincount(codes.flatten(), minlength=codebook_size).float()
    p = p / p.sum()
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()).item()


def full_precision(device: torch.device):
    """A block in which autocast is off on ``device``, so float32 inputs stay float32."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return nullcontext()  # a device autocast does not know (e.g. meta): nothing to turn off


class VectorQuantiserEMA(nn.Module):
    """Nearest-neighbour quantisation of (B, D, H, W) maps against a codebook of (K, D) vectors."""

    def __init__(self, dim: int, codebook_size: int, commitment_weight: float = 0.25,
                 decay: float = 0.99, eps: float = 1e-5, restart: bool = True,
                 restart_threshold: float = 1.0):
        super().__init__()
        self.dim, self.codebook_size = dim, codebook_size
        self.commitment_weight, self.decay, self.eps = commitment_weight, decay, eps
        self.restart, self.restart_threshold = restart, restart_threshold
        embed = torch.randn(codebook_size, dim)
        # Buffers, not parameters: no optimiser touches them, only the EMA below.
        self.register_buffer("embed", embed)  # (K, D) the codebook
        self.register_buffer("cluster_size", torch.ones(codebook_size))  # EMA of counts N_k
        self.register_buffer("embed_sum", embed.clone())  # EMA of summed assigned vectors m_k

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, D) → (N,) index of the nearest code: ||z||² − 2 z·e + ||e||², in float32."""
        with full_precision(flat.device):
            flat, embed = flat.float(), self.embed.float()
            distances = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed.t()
                         + embed.pow(2).sum(1)[None, :])
        return distances.argmin(1)

    def embed_code(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, H, W) indices → (B, D, H, W) codebook vectors: the inverse of quantising."""
        return F.embedding(codes, self.embed).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> Quantised:
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)  # (B*H*W, D)
        codes = self.nearest(flat.detach())
        quantised = self.embed_code(codes.view(b, h, w))  # looked up before the codebook moves
        if self.training:
            self._update(flat.detach(), codes)
        quantised = quantised.to(z.dtype)  # the codebook is float32; z may be half (autocast)
        # Commitment loss (van den Oord et al. 2017, eq. 3, third term): keeps the encoder
        # close to the codes it picked. The codebook term is replaced by the EMA update.
        commitment = self.commitment_weight * F.mse_loss(z, quantised.detach())
        # Straight-through estimator: the forward pass uses the code, the backward pass copies
        # the decoder's gradient to the encoder output unchanged (d quantised / d z = I).
        quantised = z + (quantised - z).detach()
        return Quantised(quantised, codes.view(b, h, w), commitment)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        """EMA codebook update (van den Oord et al. 2017, appendix A.1, eqs. 6-8), in float32."""
        with full_precision(flat.device):
            flat = flat.float()
            onehot = F.one_hot(codes, self.codebook_size).float()  # (N, K)
            # N_k ← γ N_k + (1 − γ) n_k ;  m_k ← γ m_k + (1 − γ) Σ_{z assigned to k} z
            self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
            self.embed_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
            # Laplace smoothing of the counts, so that a rarely used code never divides by ~0.
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (n + self.codebook_size * self.eps) * n
            self.embed.copy_(self.embed_sum / smoothed[:, None])  # e_k = m_k / N_k
            if self.restart:
                self._restart_dead(flat)

    @torch.no_grad()
    def _restart_dead(self, flat: torch.Tensor) -> None:
        """Move codes whose average count per batch fell below the threshold onto encoder outputs.

        Masked updates: every code gets a candidate, only the dead ones take it, so the host
        never needs to know how many died.
        """
        dead = (self.cluster_size < self.restart_threshold)[:, None]  # (K, 1)
        picks = flat[torch.randint(0, len(flat), (self.codebook_size,), device=flat.device)]
        # As in Jukebox: a restarted code starts at the threshold, so it must win at least one
        # vector in the next batch or it moves again.
        self.embed.copy_(torch.where(dead, picks, self.embed))  # (K, D)
        self.cluster_size.copy_(torch.where(dead[:, 0], self.restart_threshold, self.cluster_size))
        self.embed_sum.copy_(torch.where(dead, picks * self.restart_threshold, self.embed_sum))
