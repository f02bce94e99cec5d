"""VQ-VAE-2: shapes for 28/32 px and 1/3 channels, the verbs, training through the cache."""
import pytest
import torch

from latent_notes.data import load_data
from latent_notes.pixelcnn import train_prior
from latent_notes.train import ParameterError
from latent_notes.vqvae2 import (VQVAE2, VQVAE2Config, codebook_stats, encode_codes, train_vqvae2,
                                 vqvae2_loss)

TINY = dict(hidden=8, res_channels=4, embed_dim=4, codebook_size_top=8, codebook_size_bottom=16)


@pytest.mark.parametrize("channels,image_size,top,bottom",
                         [(1, 28, 4, 8), (3, 28, 4, 8), (1, 32, 4, 8), (3, 32, 4, 8),
                          (3, 64, 8, 16)])
def test_shapes(channels, image_size, top, bottom):
    model = VQVAE2(VQVAE2Config(channels=channels, image_size=image_size, **TINY))
    x = torch.rand(2, channels, image_size, image_size)
    flow, enc = model.flow(x)
    assert flow.x_padded.shape[-1] == 8 * top
    assert flow.z_bottom.shape == (2, 8, bottom, bottom)
    assert flow.z_top.shape == (2, 8, top, top)
    assert flow.e_top.shape == (2, 4, top, top)
    assert flow.dec_top.shape == flow.e_bottom.shape == flow.e_top_up.shape == (2, 4, bottom, bottom)
    assert enc.codes_top.shape == (2, top, top) and enc.codes_bottom.shape == (2, bottom, bottom)
    out = model(x)
    assert out.recon.shape == x.shape
    assert out.recon.min() >= 0 and out.recon.max() <= 1


def test_decode_code_matches_forward_in_eval_mode():
    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(**TINY)).eval()
    x = torch.rand(3, 1, 28, 28)
    enc = model.encode(x)
    recon = model(x).recon
    assert torch.allclose(model.decode_code(enc.codes_top, enc.codes_bottom), recon, atol=1e-6)
    assert torch.allclose(model.decode(enc.quant_top, enc.quant_bottom), recon, atol=1e-6)


def test_gradients_reach_both_encoders():
    model = VQVAE2(VQVAE2Config(**TINY))
    vqvae2_loss(model, torch.rand(4, 1, 28, 28), None)["loss"].backward()
    for module in (model.encoder_bottom, model.encoder_top, model.decoder_top, model.decoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_train_load_and_prior(tmp_path):
    data = load_data("digits", subset=120)
    kw = dict(epochs=1, seed=0, device=torch.device("cpu"), cache_dir=tmp_path, batch_size=32)
    first = train_vqvae2(data, **kw, **TINY)
    assert first.status == "trained"
    for column in ("test_mse", "test_usage_top", "test_usage_bottom", "test_perplexity_top"):
        assert column in first.history
    stats = codebook_stats(first.model, data.test.images[:50], torch.device("cpu"))
    assert 0 < stats["usage_top"] <= 1 and 1 <= stats["perplexity_top"] <= 8
    again = train_vqvae2(data, **kw, **TINY)
    assert again.status == "loaded"
    assert torch.equal(again.model.quantize_top.embed, first.model.quantize_top.embed)
    codes = encode_codes(first.model, data.train.images, data.train.labels, torch.device("cpu"))
    test_codes = encode_codes(first.model, data.test.images[:40], data.test.labels[:40],
                              torch.device("cpu"))
    assert codes.top.shape == (120, 4, 4) and codes.bottom.shape == (120, 8, 8)
    prior = train_prior(first, codes, test_codes, "bottom", channels=8, layers=2, **kw)
    assert prior.model.config.cond_codebook_size == 8
    assert prior.history["test_bits_per_code"].iloc[-1] > 0


def test_bad_options_raise():
    data = load_data("digits", subset=50)
    with pytest.raises(ParameterError):
        train_vqvae2(data, epochs=1, seed=0, device="cpu", codebook_size=3)
    with pytest.raises(ParameterError):
        train_vqvae2(data, epochs=1, seed=0, device="cpu", hidden=7)
