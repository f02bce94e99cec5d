"""Invariants of the EMA vector quantiser (in the spirit of lucidrains/vector-quantize-pytorch)."""
import pytest
import torch

from latent_notes.models.quantise import VectorQuantiserEMA, codebook_usage, perplexity


def test_shapes_and_codes_in_range():
    vq = VectorQuantiserEMA(dim=8, codebook_size=16)
    out = vq(torch.randn(4, 8, 5, 6))
    assert out.quantised.shape == (4, 8, 5, 6)
    assert out.codes.shape == (4, 5, 6) and out.codes.dtype == torch.long
    assert 0 <= out.codes.min() and out.codes.max() < 16
    assert out.commitment.ndim == 0 and out.commitment >= 0


@pytest.mark.parametrize("weight", [0.25, 1.0, 0.0])
def test_commitment_is_the_weighted_distance_to_the_chosen_codes(weight):
    torch.manual_seed(0)
    vq = VectorQuantiserEMA(dim=4, codebook_size=10, commitment_weight=weight).eval()
    z = torch.randn(2, 4, 3, 3)
    out = vq(z)
    chosen = vq.embed_code(out.codes)
    assert torch.allclose(out.commitment, weight * ((z - chosen) ** 2).mean())


def test_codes_are_nearest_codebook_vectors():
    torch.manual_seed(0)
    vq = VectorQuantiserEMA(dim=4, codebook_size=10).eval()
    z = torch.randn(2, 4, 3, 3)
    out = vq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    brute = torch.cdist(flat, vq.embed).argmin(1)
    assert torch.equal(out.codes.flatten(), brute)


def test_straight_through_gradient_reaches_encoder():
    torch.manual_seed(0)
    encoder = torch.nn.Conv2d(3, 8, 1)
    vq = VectorQuantiserEMA(dim=8, codebook_size=16)
    out = vq(encoder(torch.randn(2, 3, 4, 4)))
    (out.quantised ** 2).sum().backward()  # a loss on the quantised output only
    assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0


def test_straight_through_copies_the_gradient():
    vq = VectorQuantiserEMA(dim=4, codebook_size=8).eval()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    g = torch.randn(2, 4, 3, 3)
    (vq(z).quantised * g).sum().backward()
    assert torch.allclose(z.grad, g)  # d quantised / d z = identity


@pytest.mark.parametrize("restart", [True, False])
def test_ema_buffers_change_in_training_and_not_in_eval(restart):
    torch.manual_seed(0)
    vq = VectorQuantiserEMA(dim=4, codebook_size=8, restart=restart)
    before = {k: v.clone() for k, v in vq.named_buffers()}
    vq.eval()
    vq(torch.randn(8, 4, 4, 4))
    for k, v in vq.named_buffers():
        assert torch.equal(v, before[k]), f"{k} moved in eval mode"
    vq.train()
    vq(torch.randn(8, 4, 4, 4))
    assert not torch.equal(vq.embed, before["embed"])
    assert not torch.equal(vq.cluster_size, before["cluster_size"])


@pytest.mark.parametrize("restart", [True, False])
def test_decoding_indices_gives_back_the_quantised_tensor(restart):
    torch.manual_seed(0)
    vq = VectorQuantiserEMA(dim=6, codebook_size=12, restart=restart)
    z = torch.randn(3, 6, 4, 4)
    codebook = vq.embed.clone()
    out = vq(z)  # training mode: the lookup uses the codebook as it was before the EMA step
    assert torch.allclose(codebook[out.codes].permute(0, 3, 1, 2), out.quantised, atol=1e-6)
    vq.eval()
    out = vq(z)
    assert torch.allclose(vq.embed_code(out.codes), out.quantised, atol=1e-6)


def test_ema_moves_a_code_towards_its_assigned_vectors():
    torch.manual_seed(0)
    vq = VectorQuantiserEMA(dim=2, codebook_size=2, restart=False, decay=0.5)
    vq.embed.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    vq.embed_sum.copy_(vq.embed)
    z = torch.full((1, 2, 2, 2), 1.0)  # four vectors (1, 1), all nearest to code 0
    for _ in range(30):
        vq(z)
    assert torch.allclose(vq.embed[0], torch.ones(2), atol=1e-3)


def test_dead_code_restart_revives_unused_codes():
    torch.manual_seed(0)
    z = torch.randn(16, 4, 4, 4) * 0.1  # encoder outputs near 0
    usage = {}
    for restart in (False, True):
        torch.manual_seed(1)
        vq = VectorQuantiserEMA(dim=4, codebook_size=32, restart=restart)
        vq.embed.mul_(100.0)  # push all codes far away: a handful win, the rest die
        vq.embed_sum.copy_(vq.embed)
        for _ in range(20):
            vq(z)
        vq.eval()
        usage[restart] = codebook_usage(vq(z).codes, 32)
    assert usage[False] <= 2 / 32
    assert usage[True] >= 0.5


def test_usage_and_perplexity():
    codes = torch.tensor([0, 1, 2, 3])
    assert codebook_usage(codes, 8) == 0.5
    assert abs(perplexity(codes, 8) - 4.0) < 1e-4
    assert abs(perplexity(torch.zeros(10, dtype=torch.long), 8) - 1.0) < 1e-4
