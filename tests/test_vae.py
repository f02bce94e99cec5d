"""Tests of the variational autoencoder: shapes, the loss and its scaling, the bounds, the data."""
from __future__ import annotations

import math
from dataclasses import replace as dataclass_replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from latent_notes import families
from latent_notes.checks import ParameterError
from latent_notes.data import load_data, with_binarised_test
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


@pytest.fixture(scope="module")
def trained_binary(tmp_path_factory):
    """A small VAE trained on dynamically binarised digits (all 1,437 training images, a
    few seconds), and the digits' test set binarised once."""
    binary = with_binarised_test(load_data("digits"), seed=0)
    config, recipe = VAES.recipe(binary, epochs=3, latent_size=4, width=4, fc_width=32,
                                 binarise=True)
    run = Run.here(0, CPU, tmp_path_factory.mktemp("binary"))
    return families.train(VAES, binary, config, recipe, run=run).model, binary.test.images


def test_one_importance_sample_is_the_elbo_in_expectation(trained_binary):
    model, images = trained_binary
    many = images[:40].repeat(50, 1, 1, 1)  # 2,000 draws: the mean of K = 1 settles
    one = experiments.importance_sampled_nll(model, many, "cpu", samples=1, seed=1)
    elbo = experiments.evaluate_elbo(model, many, "cpu", seed=2)["neg_elbo"]
    assert one == pytest.approx(elbo, rel=5e-3)  # the same expectation, other draws


def test_more_importance_samples_give_a_tighter_lower_estimate(trained_binary):
    model, images = trained_binary
    nll = {k: experiments.importance_sampled_nll(model, images[:60], "cpu", samples=k)
           for k in (1, 10, 100)}
    assert nll[1] > nll[10] > nll[100], nll
    elbo = experiments.evaluate_elbo(model, images[:60], "cpu")["neg_elbo"]
    assert nll[100] < elbo


def test_the_estimate_does_not_depend_on_how_the_codes_are_batched(trained_binary):
    model, images = trained_binary
    runs = [experiments.importance_sampled_nll(model, images[:30], "cpu", samples=50,
                                               codes_per_pass=codes, batch_size=batch)
            for codes, batch in [(30, 30), (1500, 30), (4096, 30), (64, 10)]]
    # the same draws whatever the pass size; other batches of images draw in another order
    assert runs[0] == pytest.approx(runs[1], abs=1e-9) == pytest.approx(runs[2], abs=1e-9)
    assert runs[3] == pytest.approx(runs[0], abs=2.0)


def test_the_estimator_runs_no_python_loop_per_image_or_sample(trained_binary, monkeypatch):
    model, images = trained_binary
    passes = []
    decode = model.decode_logits
    monkeypatch.setattr(model, "decode_logits", lambda z: passes.append(len(z)) or decode(z))
    experiments.importance_sampled_nll(model, images[:100], "cpu", samples=200,
                                       codes_per_pass=2000)
    assert passes == [2000] * 10  # 20 samples of 100 images per pass: 10 passes in all


def test_binarised_training_draws_new_black_and_white_batches():
    model = tiny(binarise=True)
    seen, posterior = [], model.posterior
    model.posterior = lambda inputs: seen.append(inputs) or posterior(inputs)
    x = torch.rand(8, 1, 28, 28)
    vae.vae_loss(model, x)
    vae.vae_loss(model, x)  # the same images a second time, as in the next epoch
    first, second = seen
    assert set(first.unique().tolist()) <= {0.0, 1.0} and not torch.equal(first, second)
    assert (first.mean() - x.mean()).abs() < 0.05  # each pixel is 1 with its grey level
    black_and_white = torch.bernoulli(x)
    vae.vae_loss(model, black_and_white)  # an image already 0/1 stays as it is
    assert torch.equal(seen[-1], black_and_white)


def test_binarise_is_a_switch_that_goes_with_the_bernoulli_decoder():
    with pytest.raises(ParameterError, match="binarise must be True or False"):
        VAEConfig(binarise=1)
    with pytest.raises(ParameterError, match="likelihood='bernoulli'"):
        VAEConfig(binarise=True, likelihood="gaussian")


def test_a_vae_without_binarise_keeps_its_key_and_names(digits):
    plain, recipe = VAES.recipe(digits, epochs=1)
    binary = dataclass_replace(plain, binarise=True)
    key = families._key(plain, recipe, digits.spec, 0)
    assert "binarise" not in key["model"]  # the key of every VAE trained before the switch
    assert set(key["model"]) | {"binarise"} == set(families._key(binary, recipe, digits.spec,
                                                                 0)["model"])
    assert VAES.checkpoint_name(plain) == "vae-latent16" == VAES.alias_stem(plain)
    assert VAES.checkpoint_name(binary) == "vae-latent16-binary"
    assert VAES.alias_stem(binary) is None  # not the VAE later chapters compare


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


# -- the sweep over latent sizes ---------------------------------------------------------------

def test_the_latent_size_sweep_measures_each_size_and_draws_both_curves():
    import matplotlib

    matplotlib.use("Agg")
    images = torch.rand(12, 1, 28, 28)
    models = {8: tiny(latent_size=8), 2: tiny(latent_size=2)}
    table = experiments.latent_size_sweep(models, images, "cpu")
    assert table["latent_size"].tolist() == [2, 8]  # sorted by size
    terms = experiments.evaluate_elbo(models[8], images, "cpu")
    assert table.loc[1, "rate_bits"] == pytest.approx(terms["kl"] / math.log(2))
    assert table.loc[1, "neg_elbo"] == pytest.approx(terms["neg_elbo"])
    assert table.loc[1, "active_units"] == experiments.active_units(models[8], images, "cpu")
    assert (table["test_mse"] > 0).all()
    fig = experiments.latent_size_plot(table, "sizes")
    assert [ax.get_xlabel() for ax in fig.axes] == ["latent size D (log scale)"] * 2
    assert fig.axes[0].get_ylabel() == "rate, bits per image" and fig._suptitle.get_text()


def sizes(rates, mses, units):
    return pd.DataFrame({"latent_size": [2, 4, 8, 16][:len(rates)], "rate_bits": rates,
                         "test_mse": mses, "active_units": units})


@pytest.mark.parametrize("rates,says", [
    ([10.0, 18.0, 19.0, 20.0], "Beyond D = 4 each step adds less than 10% to the rate"),
    ([10.0, 18.0, 30.0, 45.0], "The rate is still growing at D = 16"),
    ([10.0, 10.5, 10.6, 10.7], "Beyond D = 2 each step adds less than 10%"),
    ([10.0, 18.0, 17.0, 15.0], "The rate peaks at D = 4 (18.0 bits) and the test MSE is lowest"
                               " at D = 16 (0.0190)"),
])
def test_the_latent_size_sentence_reads_the_trend_and_the_plateau(rates, says):
    text = experiments.latent_size_sentence(sizes(rates, [0.04, 0.03, 0.02, 0.019],
                                                  [2, 4, 7, 9]))
    assert text.startswith(f"from D = 2 to D = 16 the rate goes from {rates[0]:.1f} to "
                           f"{rates[-1]:.1f} bits per image and the test MSE from 0.0400 to "
                           "0.0190")
    assert says in text
    assert text.endswith("At D = 16, 9 of the 16 dimensions are active")
    few = experiments.latent_size_sentence(sizes(rates, [0.04, 0.03, 0.02, 0.019], [2, 4, 5, 6]))
    assert few.endswith("6 of the 16 dimensions are active: the rest are left to the prior")
    assert "only one latent size" in experiments.latent_size_sentence(
        sizes([5.0], [0.1], [1])).lower()


# -- what chapter 1's judge reads, and how far images differ ------------------------------------

@pytest.fixture(scope="module")
def judge():
    from latent_notes.models.classifier import CNN, CNNConfig

    torch.manual_seed(0)
    return CNN(CNNConfig(arch="cnn3x3", width=4)).eval()


def test_confident_share_and_same_reading(judge):
    images = torch.rand(30, 1, 28, 28)
    share = experiments.confident_share(judge, images, "cpu", 0.5)
    assert 0 <= share <= 1
    assert experiments.confident_share(judge, images, "cpu", 0.0) == 1.0  # every image
    assert experiments.confident_share(judge, images, "cpu", 1.01) == 0.0  # none
    assert math.isnan(experiments.confident_share(None, images, "cpu"))  # no judge
    read = torch.as_tensor(experiments.predict(judge, images, "cpu").argmax(1))
    assert experiments.same_reading(judge, images, read, "cpu") == 1.0  # labels
    assert experiments.same_reading(judge, images, images, "cpu") == 1.0  # reference images
    assert experiments.same_reading(judge, images, (read + 1) % 10, "cpu") == 0.0
    assert math.isnan(experiments.same_reading(None, images, read, "cpu"))


def test_pair_and_neighbour_differences():
    assert experiments.pair_difference(torch.full((5, 1, 4, 4), 0.3)) == 0.0
    two = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    assert experiments.pair_difference(two) == 1.0
    steps = 3  # cells whose every pixel is its column index / 2: side-by-side cells differ by
    # 0.5, cells one above the other by 0; 6 pairs of each kind
    grid = torch.arange(steps).repeat(steps).float().div(2).view(-1, 1, 1, 1).expand(-1, 1, 4, 4)
    assert experiments.neighbour_difference(grid, steps) == pytest.approx(0.25)
    assert experiments.neighbour_difference(torch.zeros(9, 1, 4, 4), steps) == 0.0


def test_judged_scores_read_the_model(judge):
    model = tiny()
    images, labels = torch.rand(12, 1, 28, 28), torch.arange(12) % 10
    scores = experiments.judged_scores(model, images, labels, "cpu", judge=judge, samples=8)
    with torch.no_grad():
        mu, logvar = model.posterior(images)
    assert scores["sigma_median"] == pytest.approx(float(torch.exp(0.5 * logvar).median()))
    assert scores["mu_spread"] == pytest.approx(float(mu.std(0).mean()))
    for key in ("recon_same_label", "sample_confident_share"):
        assert 0 <= scores[key] <= 1, key
    assert scores["sample_difference"] >= 0
    alone = experiments.judged_scores(model, images, labels, "cpu", samples=8)  # no judge
    assert math.isnan(alone["recon_same_label"]) and math.isnan(alone["sample_confident_share"])
    assert alone["sigma_median"] == scores["sigma_median"]


def test_perturbation_effect_against_the_undisturbed_image(judge):
    still = torch.rand(6, 1, 28, 28)
    frames = torch.stack([still, still.flip(-1), 1 - still], 1)  # (N, 3 amounts, C, H, W)
    table = experiments.perturbation_effect(frames, still, [0, 1, 2], "cpu", judge=judge)
    assert table.amount.tolist() == [0.0, 1.0, 2.0]
    assert table.mean_change[0] == 0 and table.same_reading[0] == 1.0
    assert table.mean_change[2] == pytest.approx(float((1 - 2 * still).abs().mean()), rel=1e-5)
    assert table.same_reading.between(0, 1).all()
    unread = experiments.perturbation_effect(frames, still, [0, 1, 2], "cpu")  # no judge
    assert unread.same_reading.isna().all()


def test_judged_paths_join_images_of_different_digits(judge):
    model = tiny()
    images, labels = torch.rand(20, 1, 28, 28), torch.arange(20) % 2
    paths = experiments.judged_paths(model, images, labels, "cpu", judge, pairs=5, steps=5)
    assert paths["pairs"] <= 5 and 0 <= paths["latent"] <= 1 and 0 <= paths["pixels"] <= 1
    assert experiments.judged_paths(model, images, labels, "cpu", judge, confidence=0.0,
                                    pairs=5)["pixels"] == 1.0
    assert math.isnan(experiments.judged_paths(model, images, labels, "cpu", None)["latent"])
    same = experiments.judged_paths(model, images, torch.zeros(20), "cpu", judge)  # one digit
    assert same["pairs"] == 0 and math.isnan(same["latent"])
