"""The gated PixelCNN prior: causal masks (checked through gradients), conditioning, sampling."""
import pytest
import torch

from latent_notes.pixelcnn import (PixelCNN, PixelCNNConfig, generate, prior_inputs, prior_loss,
                                   upsample_codes)
from latent_notes.train import ParameterError
from latent_notes.vqvae2 import VQVAE2, VQVAE2Config


def dependence(model, g, position, **condition):
    """|d logits[position] / d input| summed over channels: (G, G) map of what the output saw."""
    x = torch.randn(1, model.config.channels, g, g, requires_grad=True)
    logits = model.logits_from_embedded(x, model.context(**condition))
    i, j = position
    logits[0, :, i, j].sum().backward()
    return x.grad[0].abs().sum(0)


@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("conditioned", [False, True])
def test_masks_are_causal(kernel_size, conditioned):
    torch.manual_seed(0)
    g = 6
    cfg = PixelCNNConfig(codebook_size=7, grid_size=g, channels=8, layers=4, kernel_size=kernel_size,
                         num_classes=3 if conditioned else 0,
                         cond_codebook_size=5 if conditioned else 0)
    model = PixelCNN(cfg)
    condition = ({"labels": torch.tensor([1]), "cond": torch.randint(0, 5, (1, g, g))}
                 if conditioned else {})
    for i in range(g):
        for j in range(g):
            grad = dependence(model, g, (i, j), **condition)
            order = torch.arange(g * g).view(g, g)
            future = order >= i * g + j  # the position itself and everything after it
            assert grad[future].abs().max() == 0, f"output ({i},{j}) sees its own or later inputs"


def test_no_blind_spot():
    """With enough layers every earlier position is seen, including those up and to the right."""
    torch.manual_seed(0)
    g = 5
    model = PixelCNN(PixelCNNConfig(codebook_size=4, grid_size=g, channels=8, layers=6))
    grad = dependence(model, g, (3, 2))
    seen = grad > 0
    order = torch.arange(g * g).view(g, g)
    assert seen[order < 3 * g + 2].all()


def test_logits_shape_and_loss_is_bits():
    model = PixelCNN(PixelCNNConfig(codebook_size=16, grid_size=4, channels=8, layers=2))
    codes = torch.randint(0, 16, (3, 4, 4))
    assert model(codes).shape == (3, 16, 4, 4)
    bits = prior_loss(model, codes[:, None], torch.zeros(3, dtype=torch.long))["bits_per_code"]
    assert 0 < bits.item() < 8  # near log2(16) = 4 bits for an untrained model


def test_condition_must_match_config():
    model = PixelCNN(PixelCNNConfig(codebook_size=4, grid_size=4, channels=8, layers=2,
                                    num_classes=10))
    with pytest.raises(ParameterError):
        model(torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ParameterError):
        model.sample(2, torch.tensor([0, 1]), temperature=0)


def test_sample_shapes_and_range():
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(codebook_size=5, grid_size=4, channels=8, layers=2,
                                    num_classes=2, cond_codebook_size=3))
    codes = model.sample(3, torch.tensor([0, 1, 1]), cond=torch.randint(0, 3, (3, 4, 4)),
                         temperature=0.7)
    assert codes.shape == (3, 4, 4) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 5


def test_low_temperature_picks_the_mode():
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(codebook_size=6, grid_size=3, channels=8, layers=2))
    a = model.sample(4, temperature=1e-4)
    assert (a == a[0]).all()  # (near) greedy decoding: every sample the same


def test_prior_inputs_and_upsampling():
    top = torch.arange(4).view(1, 2, 2)
    assert upsample_codes(top, 2)[0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1],
                                                 [2, 2, 3, 3], [2, 2, 3, 3]]
    bottom = torch.zeros(1, 4, 4, dtype=torch.long)
    assert prior_inputs(top, bottom, "top").shape == (1, 1, 2, 2)
    assert prior_inputs(top, bottom, "bottom").shape == (1, 2, 4, 4)


@pytest.mark.parametrize("channels,image_size", [(1, 28), (3, 32)])
def test_generate_pipeline(channels, image_size):
    torch.manual_seed(0)
    vq = VQVAE2(VQVAE2Config(channels=channels, image_size=image_size, hidden=8, res_channels=4,
                             embed_dim=4, codebook_size_top=6, codebook_size_bottom=7))
    c = vq.config
    top = PixelCNN(PixelCNNConfig(6, c.top_grid, channels=8, layers=2, num_classes=3))
    bottom = PixelCNN(PixelCNNConfig(7, c.bottom_grid, channels=8, layers=2, num_classes=3,
                                     cond_codebook_size=6))
    images = generate(vq, top, bottom, 3, torch.tensor([0, 1, 2]), temperature=0.9)
    assert images.shape == (3, channels, image_size, image_size)
    assert images.min() >= 0 and images.max() <= 1
