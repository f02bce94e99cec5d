"""Tests of the variational autoencoder: shapes, the loss and its scaling, the bounds, the data."""
from __future__ import annotations

import math
from dataclasses import replace as dataclass_replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from latent_notes import families
from latent_notes.checks import ParameterError
from latent_notes.data import load_data
from latent_notes.experiments import vae_experiments as experiments
from latent_notes.experiments.metrics import psnr
from latent_notes.models import vae
from latent_notes.models.common import seeded
from latent_notes.models.vae import VAEConfig
from latent_notes.store.cache import Run
from latent_notes.training import TrainConfig

VAES = families.FAMILIES["vae"]

CPU = torch.device("cpu")


def tiny(**kwargs) -> vae.VAE:
    torch.manual_seed(0)
    return vae.VAE(VAEConfig(**{"latent_size": 4, "width": 4, "fc_width": 16, **kwargs}))


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", subset=200)


@pytest.mark.parametrize("channels,image_size", [(1, 28), (3, 64), (3, 32)])
def test_shapes_and_ranges(channels, image_size):
    model = tiny(channels=channels, image_size=image_size)
    x = torch.rand(5, channels, image_size, image_size)
    mu, logvar = model.posterior(x)
    assert mu.shape == logvar.shape == (5, 4)
    assert torch.equal(model.encode(x), mu)  # the code a probe reads is the posterior mean
    assert torch.allclose(model.reconstruct(x), model.decode(mu))  # deterministic: decode(μ)
    out = model(x)
    assert out.recon.shape == out.logits.shape == x.shape
    assert out.z.shape == (5, 4)
    assert 0 <= out.recon.min() and out.recon.max() <= 1
    samples = model.sample(3, seed=1)
    assert samples.shape == (3, channels, image_size, image_size)
    assert torch.equal(samples, model.sample(3, seed=1))
    assert not torch.equal(samples, model.sample(3, seed=2))
    # labels are accepted (the shared interface) and ignored: the prior has no classes
    assert torch.equal(samples, model.sample(3, seed=1, labels=torch.tensor([0, 1, 2])))


@pytest.mark.parametrize("config,named", [(dict(likelihood="poisson"), "likelihood"),
                                          (dict(image_size=27), "image_size"),
                                          (dict(fc_width=0), "fc_width"),
                                          (dict(latent_size=-1), "latent_size"),
                                          (dict(decoder_std=0.0), "decoder_std"),
                                          (dict(channels=2), "channels")])
def test_bad_parameters_raise_clear_errors(config, named):
    with pytest.raises(ParameterError, match=named):
        tiny(**config)


def test_kl_matches_monte_carlo_estimate():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5)
    closed = vae.kl_to_standard_normal(mu, logvar).sum(1)  # (3,)
    z = mu + (0.5 * logvar).exp() * torch.randn(200_000, 3, 5)  # (S, 3, 5) draws from q
    log_q = experiments._log_normal(z, mu, logvar)
    log_p = experiments._log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
    monte_carlo = (log_q - log_p).mean(0)
    assert torch.allclose(closed, monte_carlo, rtol=0.02, atol=0.02)
    assert torch.all(vae.kl_to_standard_normal(torch.zeros(4), torch.zeros(4)) == 0)


def test_loss_is_summed_over_pixels_and_averaged_over_batch():
    model = tiny(beta=2.0)
    x = torch.rand(6, 1, 28, 28)
    torch.manual_seed(1)
    terms = vae.vae_loss(model, x)
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
    model = tiny(beta=0.0)
    x = torch.rand(4, 1, 28, 28)
    torch.manual_seed(0)
    terms = vae.vae_loss(model, x)
    assert torch.equal(terms["loss"], terms["recon"])
    # With σ → 0 the sampled code is μ: the loss is the autoencoder's cross-entropy of decode(μ).
    with torch.no_grad():
        model.to_logvar.weight.zero_()
        model.to_logvar.bias.fill_(-40.0)
    loss = vae.vae_loss(model, x)["loss"]
    ae = F.binary_cross_entropy(model.decode(model.encode(x)), x, reduction="sum") / len(x)
    assert torch.allclose(loss, ae, rtol=1e-4)


@pytest.mark.parametrize("beta,recon_weight", [(0.0, 1.0), (2.5, 0.0), (0.5, 2.0)])
def test_the_loss_weighs_its_terms_with_the_configs_weights(beta, recon_weight):
    model = tiny(beta=beta, recon_weight=recon_weight)
    x = torch.rand(4, 1, 28, 28)
    torch.manual_seed(0)
    terms = vae.vae_loss(model, x)
    assert terms["kl"] > 0 and terms["recon"] > 0  # both terms are there to be weighed
    assert torch.allclose(terms["loss"], recon_weight * terms["recon"] + beta * terms["kl"])
    assert torch.allclose(terms["neg_elbo"], terms["recon"] + terms["kl"])  # the bound unweighted


def test_denoising_loss_sees_noisy_inputs_and_clean_targets():
    model = tiny(likelihood="gaussian", decoder_std=0.5, noise_std=0.3)
    model.reparameterise = lambda mu, logvar: mu  # deterministic: only the pixel noise is random
    seen, posterior = [], model.posterior
    model.posterior = lambda inputs: seen.append(inputs) or posterior(inputs)
    x = torch.rand(4, 1, 28, 28)
    with seeded(5):
        terms = vae.vae_loss(model, x)
    with seeded(5):
        noisy = vae.add_pixel_noise(x, 0.3)
    assert noisy.min() >= 0 and noisy.max() <= 1 and (noisy - x).abs().mean() > 0.1
    assert len(seen) == 1 and torch.equal(seen[0], noisy)  # the encoder sees the noisy copy ...
    recon = model(noisy).recon
    scored_on = lambda target: ((recon - target) ** 2).sum() / (2 * 0.5 ** 2) / len(x)  # noqa
    assert torch.allclose(terms["recon"], scored_on(x), rtol=1e-4)  # ... and is scored on x
    assert not torch.allclose(terms["recon"], scored_on(noisy), rtol=1e-2)
    seen.clear()
    model.config = dataclass_replace(model.config, noise_std=0.0)
    vae.vae_loss(model, x)  # noise_std = 0: the clean images go in
    assert torch.equal(seen[0], x)


@pytest.mark.parametrize("options,named", [(dict(beta=-1.0), "beta"),
                                           (dict(recon_weight=-0.5), "recon_weight"),
                                           (dict(noise_std=-0.1), "noise_std"),
                                           (dict(epochs=0), "epochs")])
def test_vae_config_rejects_negative_weights(options, named):
    with pytest.raises(ParameterError, match=named):
        VAEConfig(**options) if named != "epochs" else TrainConfig(**options)


def test_importance_sampled_nll_is_at_most_the_elbo_bound(digits, tmp_path):
    trained = families.train(VAES, digits, *VAES.recipe(digits, epochs=2, latent_size=4, width=4,
                                                        fc_width=32),
                             run=Run.here(0, CPU, tmp_path))
    images = digits.test.images[:40]
    elbo = np.mean([experiments.evaluate_elbo(trained.model, images, "cpu", seed=s)["neg_elbo"]
                    for s in range(10)])
    nll = experiments.importance_sampled_nll(trained.model, images, "cpu", samples=50)
    assert nll <= elbo
    # One sample is a one-draw estimate of -ELBO: the same reconstruction term for the same
    # draw (same seed), and the KL term estimated by log q(z|x) - log p(z) at that draw.
    one = experiments.importance_sampled_nll(trained.model, images, "cpu", samples=1, seed=3)
    model, cfg = trained.model, trained.model.config
    with torch.no_grad(), seeded(3):
        mu, logvar = model.posterior(images)
        z = model.reparameterise(mu, logvar)
        recon = vae.reconstruction_nll(model.decode_logits(z), images, cfg.likelihood,
                                       cfg.decoder_std)
        kl_draw = (experiments._log_normal(z, mu, logvar)
                   - experiments._log_normal(z, torch.zeros_like(z), torch.zeros_like(z)))
    assert one == pytest.approx(float((recon + kl_draw).double().mean()), rel=1e-4)
    assert float(recon.double().mean()) == pytest.approx(
        experiments.evaluate_elbo(model, images, "cpu", seed=3)["recon"], rel=1e-4)


def test_training_is_cached_and_reproducible(digits, tmp_path):
    config, recipe = VAES.recipe(digits, epochs=2, latent_size=3, width=4, fc_width=16, beta=0.5,
                                 schedule="step", lr_drop_at=1)

    def run(folder):
        return Run.here(0, CPU, tmp_path / folder)

    first = families.train(VAES, digits, config, recipe, run=run("a"))
    again = families.train(VAES, digits, config, recipe, run=run("b"))
    loaded = families.train(VAES, digits, config, recipe, run=run("a"))
    assert first.status == again.status == "trained" and loaded.status == "loaded"
    assert np.allclose(first.history["val_loss"], again.history["val_loss"])
    assert loaded.model.config == config
    assert loaded.config["model"]["beta"] == 0.5  # the loss weights are part of the key
    assert first.path.name.startswith("vae-latent3-beta0.5")
    assert set(first.history) >= {"train_loss", "val_neg_elbo", "val_recon", "val_kl"}
    # β weighs the KL term of the training loss: loss = recon + 0.5 kl, the bound is recon + kl.
    h = first.history
    assert np.allclose(h["val_loss"], h["val_recon"] + 0.5 * h["val_kl"], rtol=1e-5)
    other = families.train(VAES, digits, dataclass_replace(config, beta=1.0), recipe, run=run("a"))
    assert other.status == "trained" and other.path != first.path
    with pytest.raises(ParameterError, match="lr_drop_at"):
        TrainConfig(epochs=1, schedule="step", lr_drop_at=0)
    with pytest.raises(ParameterError, match="VAEConfig"):  # a config of another family
        families.train(VAES, digits, families.CLASSIFIER.configure(digits), recipe, run=run("a"))


def test_sized_reads_the_data_and_rejects_unknown_options(digits):
    config = VAES.configure(digits, latent_size=5, fc_width=64)
    assert (config.channels, config.image_size, config.latent_size,
            config.fc_width) == (1, 28, 5, 64)
    with pytest.raises(ParameterError, match="hidden"):
        VAES.configure(digits, hidden=64)
    with pytest.raises(ParameterError, match="Unknown option.*epoch.*training options"):
        VAES.recipe(digits, epochs=1, epoch=3)  # neither a model nor a training field


def test_active_units_count_dimensions_whose_mean_moves_with_the_image():
    model = tiny(latent_size=6, width=8, fc_width=64)
    images = torch.rand(20, 1, 28, 28)
    with torch.no_grad():  # posterior = prior for every image: nothing is encoded
        for head in (model.to_mu, model.to_logvar):
            head.weight.zero_()
            head.bias.zero_()
        model.to_mu.weight[:2].normal_(0, 10.0)  # ... except in the first two dimensions
    kl = experiments.kl_per_dimension(model, images, "cpu")
    assert kl.shape == (6,)
    assert torch.all(kl[2:] == 0) and torch.all(kl[:2] > 0.01)
    assert experiments.active_units(model, images, "cpu") == 2
    # Burda et al.'s definition, not KL > 0.01: a narrower posterior with the same mean for
    # every image pays KL in every dimension but tells the decoder nothing new
    with torch.no_grad():
        model.to_logvar.bias.fill_(-1.0)
    assert torch.all(experiments.kl_per_dimension(model, images, "cpu") > 0.01)
    assert experiments.active_units(model, images, "cpu") == 2


def test_psnr_and_denoising():
    clean = torch.full((2, 1, 8, 8), 0.5)
    assert abs(psnr(clean + 0.1, clean) - 20.0) < 1e-4
    model = tiny(image_size=16)
    images = torch.rand(10, 1, 16, 16)
    result = experiments.denoise(model, images, 0.3, "cpu")
    assert isinstance(result, experiments.Denoised)
    assert result.noisy.shape == result.output.shape == (10, 1, 16, 16)
    assert 0 < result.psnr_in < 30 and math.isfinite(result.psnr_out)
    assert result.noisy.min() >= 0 and result.noisy.max() <= 1
    # the numbers are those of the images it returns, and the output is the reconstruction
    assert result.psnr_in == pytest.approx(psnr(result.noisy, images))
    assert result.psnr_out == pytest.approx(psnr(result.output, images))
    with torch.no_grad():
        assert torch.allclose(result.output, model.reconstruct(result.noisy), atol=1e-6)
    again = experiments.denoise(model, images, 0.3, "cpu")
    assert torch.equal(again.noisy, result.noisy)  # seeded


def test_folder_of_rgb_images_of_two_sizes(tmp_path):
    rng = np.random.default_rng(0)
    for cls, size in (("cars", (40, 30)), ("vans", (100, 80))):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(tmp_path / "images" / cls / f"{i}.png")
    data = load_data(f"folder:{tmp_path / 'images'}", image_size=32)
    assert data.classes == ["cars", "vans"]
    assert data.train.images.shape[1:] == (3, 32, 32)
    assert len(data.train) + len(data.val) + len(data.test) == 8
    trained = families.train(VAES, data, *VAES.recipe(data, epochs=1, batch_size=4, latent_size=4,
                                                      width=4, fc_width=16,
                                                      likelihood="gaussian"),
                             run=Run.here(0, CPU, tmp_path / "cache"))
    assert trained.model.config.channels == 3 and trained.model.config.image_size == 32
    assert trained.model.sample(2).shape == (2, 3, 32, 32)
    assert np.isfinite(trained.history["val_neg_elbo"]).all()


def test_mu_and_sigma_experiments():
    model = tiny()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        mean_image = model.decode(model.encode(x))
    pushed = experiments.decode_mu_plus_uniform(model, x, [0.0, 1.0], "cpu")
    assert pushed.shape == (3, 2, 1, 28, 28)
    assert torch.allclose(pushed[:, 0], mean_image, atol=1e-6)  # s = 0 decodes μ itself
    assert not torch.allclose(pushed[:, 1], mean_image, atol=1e-3)  # s = 1 moves it
    spread = experiments.decode_scaled_sigma(model, x, [0.0, 10.0], "cpu")
    assert torch.allclose(spread[:, 0], mean_image, atol=1e-6)  # k = 0 decodes μ itself
    assert not torch.allclose(spread[:, 1], mean_image, atol=1e-3)


def test_manifold_grid_of_a_2d_latent():
    model = tiny(latent_size=2)
    grid = experiments.manifold(model, "cpu", steps=5)
    assert grid.shape == (25, 1, 28, 28)
    # the centre of an odd grid is the prior's median, z = (0, 0)
    with torch.no_grad():
        assert torch.allclose(grid[12], model.decode(torch.zeros(1, 2))[0], atol=1e-6)
    with pytest.raises(ParameterError, match="2-D"):
        experiments.manifold(tiny(latent_size=3), "cpu")
