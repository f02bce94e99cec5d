"""What the model families share: seeded randomness, batched application, the halving rule,
and the Gaussian an autoencoder samples its codes from."""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int):
    """Run a block with its own seeded random stream, leaving the global ones untouched.

    ``torch.manual_seed`` reseeds every device type's generator: the CPU's, each CUDA device's
    and the Apple GPU's. So all of them are saved before the block and restored after it, and
    a draw inside the block gives the same numbers for the same seed on the same device.
    """
    cpu = torch.get_rng_state()
    # Reading the CUDA states initialises CUDA, which applies any seed still waiting for it;
    # so the block's own seed cannot stay pending and reseed the global streams later.
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    mps = torch.mps.get_rng_state() if torch.backends.mps.is_available() else None
    try:
        torch.manual_seed(seed)
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        if mps is not None:
            torch.mps.set_rng_state(mps)


@torch.no_grad()
def batched(fn, inputs: torch.Tensor, device, batch_size: int = 500) -> torch.Tensor:
    """``fn`` over ``inputs`` (N, ...) in batches on ``device``; the results on the CPU, (N, ...).

    The one "apply a model over a tensor" loop of the book: encode, decode, reconstruct, judge.
    """
    parts = [fn(inputs[i:i + batch_size].to(device)).detach().cpu()
             for i in range(0, len(inputs), batch_size)]
    return torch.cat(parts) if parts else torch.empty(0)


def halvings(image_size: int) -> int:
    """How many stride-2 stages an encoder uses: halve while the side is even and above 8.

    28 → 14 → 7 (two halvings; 7 is odd, so no output padding is ever needed on the way back),
    32 → 16 → 8, 64 → 32 → 16 → 8.
    """
    steps = 0
    while image_size % 2 == 0 and image_size > 8:
        image_size //= 2
        steps += 1
    return steps


def fit_gaussian(codes) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of codes (N, D), the maximum-likelihood Gaussian."""
    z = torch.as_tensor(codes).detach().cpu().reshape(len(codes), -1).double()
    mean = z.mean(0)
    centred = z - mean
    cov = centred.T @ centred / max(len(z) - 1, 1)
    return mean.float(), cov.float()


def sample_gaussian(mean: torch.Tensor, cov: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """n draws (n, D) from N(mean, cov), seeded; a tiny jitter keeps the Cholesky factor real.

    Computed on the CPU in float64 (the Apple GPU has no float64), so the same seed gives the
    same draws on every device; returned in float32 on ``mean``'s device.
    """
    generator = torch.Generator().manual_seed(seed)
    cov = cov.detach().cpu().double()  # to the CPU first, then to float64
    eye = torch.eye(len(cov), dtype=torch.float64)
    jitter = 1e-6 * cov.diagonal().mean().clamp_min(1e-12) * eye
    factor = torch.linalg.cholesky(cov + jitter)  # cov = L L^T, so mean + L eps ~ N(mean, cov)
    eps = torch.randn(n, len(mean), generator=generator, dtype=torch.float64)
    draws = mean.detach().cpu().double() + eps @ factor.T  # (n, D)
    return draws.float().to(mean.device)


def draw_labels(n: int, num_classes: int, seed: int) -> torch.Tensor:
    """n class labels drawn uniformly, seeded: what a class-conditional model samples for."""
    return torch.randint(num_classes, (n,), generator=torch.Generator().manual_seed(seed))


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable numbers in a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
