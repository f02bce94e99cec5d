"""Tests of the variational autoencoder: shapes, the loss and its scaling, the bounds, the data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from latent_notes import vae
from latent_notes.data import load_data
from latent_notes.train import ParameterError


def tiny(**kwargs) -> vae.VAE:
    torch.manual_seed(0)
    return vae.VAE(vae.VAEConfig(**{"latent_size": 4, "width": 4, "hidden": 16, **kwargs}))


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", subset=200)


@pytest.mark.parametrize("channels,image_size", [(1, 28), (3, 64), (3, 32)])
def test_shapes_and_ranges(channels, image_size):
    model = tiny(channels=channels, image_size=image_size)
    x = torch.rand(5, channels, image_size, image_size)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 4)
    out = model(x)
    assert out.recon.shape == out.logits.shape == x.shape
    assert out.z.shape == (5, 4)
    assert 0 <= out.recon.min() and out.recon.max() <= 1
    samples = model.sample(3, seed=1)
    assert samples.shape == (3, channels, image_size, image_size)
    assert torch.equal(samples, model.sample(3, seed=1))


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(ParameterError, match="likelihood"):
        tiny(likelihood="poisson")
    with pytest.raises(ParameterError, match="image_size"):
        tiny(image_size=27)


def test_kl_matches_monte_carlo_estimate():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5)
    closed = vae.kl_to_standard_normal(mu, logvar).sum(1)  # (3,)
    z = mu + (0.5 * logvar).exp() * torch.randn(200_000, 3, 5)  # (S, 3, 5) draws from q
    log_q = vae._log_normal(z, mu, logvar)
    log_p = vae._log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
    monte_carlo = (log_q - log_p).mean(0)
    assert torch.allclose(closed, monte_carlo, rtol=0.02, atol=0.02)
    assert torch.all(vae.kl_to_standard_normal(torch.zeros(4), torch.zeros(4)) == 0)


def test_loss_is_summed_over_pixels_and_averaged_over_batch():
    model = tiny()
    x = torch.rand(6, 1, 28, 28)
    torch.manual_seed(1)
    terms = vae.vae_loss(model, x, beta=2.0)
    torch.manual_seed(1)
    out = model(x)
    recon = F.binary_cross_entropy(out.recon, x, reduction="sum") / len(x)  # nats per image
    kl = -0.5 * torch.sum(1 + out.logvar - out.mu ** 2 - out.logvar.exp()) / len(x)
    assert torch.allclose(terms["recon"], recon, rtol=1e-4)
    assert torch.allclose(terms["kl"], kl, rtol=1e-5)
    assert torch.allclose(terms["loss"], recon + 2.0 * kl, rtol=1e-4)
    assert torch.allclose(terms["neg_elbo"], recon + kl, rtol=1e-4)
    # A batch of the same images twice over gives the same (per-image) numbers.
    model.reparameterise = lambda mu, logvar: mu  # deterministic for the comparison
    one = vae.vae_loss(model, x)["loss"]
    two = vae.vae_loss(model, torch.cat([x, x]))["loss"]
    assert torch.allclose(one, two, rtol=1e-5)


def test_gaussian_likelihood_is_scaled_squared_error():
    model = tiny(likelihood="gaussian", decoder_std=0.5)
    model.reparameterise = lambda mu, logvar: mu
    x = torch.rand(4, 1, 28, 28)
    terms = vae.vae_loss(model, x)
    expected = ((model(x).recon - x) ** 2).sum() / (2 * 0.5 ** 2) / len(x)
    assert torch.allclose(terms["recon"], expected, rtol=1e-5)


def test_beta_zero_is_a_plain_autoencoder_loss():
    model = tiny()
    x = torch.rand(4, 1, 28, 28)
    torch.manual_seed(0)
    terms = vae.vae_loss(model, x, beta=0.0)
    assert torch.equal(terms["loss"], terms["recon"])
    # With σ → 0 the sampled code is μ: the loss is the autoencoder's cross-entropy of decode(μ).
    with torch.no_grad():
        model.to_logvar.weight.zero_()
        model.to_logvar.bias.fill_(-40.0)
    loss = vae.vae_loss(model, x, beta=0.0)["loss"]
    ae = F.binary_cross_entropy(model.decode(model.encode(x).mu), x, reduction="sum") / len(x)
    assert torch.allclose(loss, ae, rtol=1e-4)


def test_recon_only_and_kl_only_weights():
    model = tiny()
    x = torch.rand(4, 1, 28, 28)
    torch.manual_seed(0)
    kl_only = vae.vae_loss(model, x, recon_weight=0.0)
    assert torch.equal(kl_only["loss"], kl_only["kl"])


def test_importance_sampled_nll_is_at_most_the_elbo_bound(digits, tmp_path):
    trained = vae.train_vae(digits, vae.vae_config(digits, latent_size=4, width=4, hidden=32),
                            epochs=2, seed=0, device=torch.device("cpu"), cache_dir=tmp_path)
    images = digits.test.images[:40]
    elbo = np.mean([vae.evaluate_elbo(trained.model, images, "cpu", seed=s)["neg_elbo"]
                    for s in range(10)])
    nll = vae.importance_sampled_nll(trained.model, images, "cpu", samples=50)
    assert nll <= elbo
    # One sample is the ELBO itself (same draws, same number).
    one = vae.importance_sampled_nll(trained.model, images, "cpu", samples=1, seed=3)
    assert one == pytest.approx(vae.evaluate_elbo(trained.model, images, "cpu", seed=3,
                                                  batch_size=100)["neg_elbo"], rel=1e-4)


def test_training_is_cached_and_reproducible(digits, tmp_path):
    config = vae.vae_config(digits, latent_size=3, width=4, hidden=16)
    kwargs = dict(epochs=1, seed=0, device=torch.device("cpu"), beta=0.5, lr_drop_at=1)
    first = vae.train_vae(digits, config, cache_dir=tmp_path / "a", **kwargs)
    again = vae.train_vae(digits, config, cache_dir=tmp_path / "b", **kwargs)
    loaded = vae.train_vae(digits, config, cache_dir=tmp_path / "a", **kwargs)
    assert first.status == again.status == "trained" and loaded.status == "loaded"
    assert np.allclose(first.history["test_loss"], again.history["test_loss"])
    assert loaded.model.config == config
    assert set(first.history) >= {"train_loss", "test_neg_elbo", "test_recon", "test_kl"}
    with pytest.raises(ParameterError, match="lr_drop_at"):
        vae.train_vae(digits, config, cache_dir=tmp_path, epochs=1, seed=0, device="cpu",
                      lr_drop_at=0)


def test_active_units_count_informative_dimensions():
    model = tiny(latent_size=6, width=8, hidden=64)
    with torch.no_grad():  # posterior = prior for every image: nothing is encoded
        for head in (model.to_mu, model.to_logvar):
            head.weight.zero_()
            head.bias.zero_()
        model.to_mu.weight[:2].normal_(0, 10.0)  # ... except in the first two dimensions
    kl = vae.kl_per_dimension(model, torch.rand(20, 1, 28, 28), "cpu")
    assert kl.shape == (6,)
    assert vae.active_units(kl) == 2


def test_psnr_and_denoising():
    clean = torch.full((2, 1, 8, 8), 0.5)
    assert abs(vae.psnr(clean + 0.1, clean) - 20.0) < 1e-4
    model = tiny(image_size=16)
    result = vae.denoise(model, torch.rand(10, 1, 16, 16), 0.3, "cpu")
    assert result.noisy.shape == result.output.shape == (10, 1, 16, 16)
    assert 0 < result.psnr_in < 30 and math.isfinite(result.psnr_out)
    assert result.noisy.min() >= 0 and result.noisy.max() <= 1


def test_folder_of_rgb_images_of_two_sizes(tmp_path):
    rng = np.random.default_rng(0)
    for cls, size in (("cars", (40, 30)), ("vans", (100, 80))):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(tmp_path / "images" / cls / f"{i}.png")
    data = load_data(f"folder:{tmp_path / 'images'}", image_size=32)
    assert data.classes == ["cars", "vans"]
    assert data.train.images.shape[1:] == (3, 32, 32) and len(data.train) + len(data.test) == 8
    config = vae.vae_config(data, latent_size=4, width=4, hidden=16, likelihood="gaussian")
    trained = vae.train_vae(data, config, epochs=1, seed=0, device=torch.device("cpu"),
                            batch_size=4, cache_dir=tmp_path / "cache")
    assert trained.model.config.channels == 3 and trained.model.config.image_size == 32
    assert trained.model.sample(2).shape == (2, 3, 32, 32)
    assert np.isfinite(trained.history["test_neg_elbo"]).all()


def test_mu_and_sigma_experiments():
    from latent_notes import vae_experiments as experiments

    model = tiny()
    x = torch.rand(3, 1, 28, 28)
    mean_image = model.decode(model.encode(x).mu)
    pushed = experiments.decode_mu_plus_uniform(model, x, [0.0, 1.0], "cpu")
    assert pushed.shape == (3, 2, 1, 28, 28)
    assert torch.allclose(pushed[:, 0], mean_image, atol=1e-6)  # s = 0 decodes μ itself
    spread = experiments.decode_scaled_sigma(model, x, [0.0, 10.0], "cpu")
    assert torch.allclose(spread[:, 0], mean_image, atol=1e-6)  # k = 0 decodes μ itself
    assert experiments.one_per_class(torch.tensor([2, 0, 2, 1]), 3) == [1, 3, 0]


def test_manifold_grid_of_a_2d_latent():
    from latent_notes import vae_experiments as experiments

    grid = experiments.manifold(tiny(latent_size=2), "cpu", steps=5)
    assert grid.shape == (25, 1, 28, 28)
    with pytest.raises(ValueError, match="2-D"):
        experiments.manifold(tiny(latent_size=3), "cpu")
