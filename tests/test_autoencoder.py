"""The convolutional autoencoder: shapes, ranges, its sampling Gaussian, training through the
cache."""
import pytest
import torch

from latent_notes import families
from latent_notes.checks import ParameterError, check_latent_sizes
from latent_notes.data import load_data
from latent_notes.experiments import latent
from latent_notes.experiments.metrics import reconstruction_scores
from latent_notes.models.autoencoder import AEConfig, AEOutput, Autoencoder, reconstruction_loss
from latent_notes.models.common import batched, halvings
from latent_notes.store.cache import Run, load_checkpoint
from latent_notes.training import TrainConfig


@pytest.mark.parametrize("channels,image_size", [(1, 28), (3, 32), (3, 64), (1, 32)])
@pytest.mark.parametrize("latent_size", [2, 16, 128])
def test_encode_decode_shapes_and_range(channels, image_size, latent_size):
    model = Autoencoder(AEConfig(latent_size=latent_size, channels=channels,
                                 image_size=image_size, width=8)).eval()
    x = torch.rand(3, channels, image_size, image_size)
    codes = model.encode(x)
    assert codes.shape == (3, latent_size)
    recon = model.decode(codes)
    assert recon.shape == x.shape
    assert recon.min() >= 0 and recon.max() <= 1
    out = model(x)
    assert isinstance(out, AEOutput)
    assert torch.allclose(out.recon, recon) and torch.allclose(out.codes, codes)
    assert torch.allclose(model.reconstruct(x), recon)


def test_halvings_give_exact_sizes():
    assert [halvings(n) for n in (28, 32, 64, 8, 7)] == [2, 2, 3, 0, 0]
    assert Autoencoder(AEConfig(image_size=28)).side == 7
    assert Autoencoder(AEConfig(image_size=64, channels=3)).side == 8


@pytest.mark.parametrize("config,named", [(dict(image_size=7), "image_size"),
                                          (dict(channels=2), "channels"),
                                          (dict(latent_size=0), "latent_size"),
                                          (dict(width=-3), "width")])
def test_bad_configs_raise_a_parameter_error_naming_the_field(config, named):
    with pytest.raises(ParameterError, match=named):
        AEConfig(**config)


def test_reconstruction_loss_is_the_per_pixel_mse():
    model = Autoencoder(AEConfig(latent_size=4, width=8)).eval()
    x = torch.rand(5, 1, 28, 28)
    terms = reconstruction_loss(model, x, None)
    assert torch.isclose(terms["loss"], ((model(x).recon - x) ** 2).mean())
    assert reconstruction_scores(model, x, "cpu")["test_mse"] == pytest.approx(
        terms["loss"].item(), rel=1e-5)


def test_sample_draws_from_the_gaussian_fitted_to_the_codes():
    torch.manual_seed(0)
    model = Autoencoder(AEConfig(latent_size=3, width=4)).eval()
    codes = torch.randn(4000, 3) * torch.tensor([0.5, 2.0, 1.0]) + torch.tensor([1.0, -1.0, 3.0])
    model.fit_prior(codes)
    assert torch.allclose(model.prior_mean, codes.mean(0), atol=1e-4)
    model.decode = lambda z: z  # look at the codes sample() would decode
    first = model.sample(5000, seed=1)
    assert torch.allclose(first.mean(0), codes.mean(0), atol=0.1)
    assert torch.allclose(first.std(0), codes.std(0), atol=0.1)
    assert torch.equal(first, model.sample(5000, seed=1))  # seeded
    assert not torch.equal(first, model.sample(5000, seed=2))


def test_train_autoencoder_learns_fits_its_prior_caches_and_rebuilds(tmp_path):
    data = load_data("digits", subset=200)
    aes = families.FAMILIES["ae"]
    model_config, recipe = aes.recipe(data, epochs=3, latent_size=4, width=8, batch_size=32)
    assert (recipe.lr, recipe.schedule) == (2e-3, "onecycle")  # the family's defaults
    run = Run.here(0, "cpu", tmp_path)
    first = families.train(aes, data, model_config, recipe, run=run)
    assert first.status == "trained"
    history = first.history
    assert list(history["epoch"]) == [1, 2, 3]
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]
    codes = batched(first.model.encode, data.train.images, "cpu")
    assert torch.allclose(first.model.prior_mean, codes.mean(0), atol=1e-4)  # fitted, saved
    second = families.train(aes, data, model_config, recipe, run=run)
    assert second.status == "loaded"
    x = data.test.images[:16]
    assert torch.allclose(first.model(x).recon, second.model(x).recon, atol=1e-6)
    assert torch.equal(first.model.sample(4, seed=0), second.model.sample(4, seed=0))
    stable = families.alias(aes, data, latent_size=4)  # train stored it under its chapter's name
    rebuilt = load_checkpoint(tmp_path / f"{stable}.pt")  # the config rebuilds it
    assert rebuilt.model.config == AEConfig(latent_size=4, channels=1, image_size=28, width=8)
    with pytest.raises(ParameterError, match="lr"):
        TrainConfig(epochs=1, lr=-1.0)


def test_traversal_and_interpolation_grids_with_the_model():
    model = Autoencoder(AEConfig(latent_size=6, width=8)).eval()
    x = torch.rand(2, 1, 28, 28)
    z = batched(model.encode, x, "cpu")
    values = torch.arange(-1, 1.001, 0.25)
    grid = latent.traverse(model.decode, z[0], values)
    assert grid.shape == (6, 9, 1, 28, 28)
    frames = latent.interpolate(model.decode, z[0], z[1], steps=9)
    assert frames.shape == (9, 1, 28, 28)
    ends = model.decode(z)
    assert torch.allclose(frames[0], ends[0], atol=1e-6)
    assert torch.allclose(frames[-1], ends[1], atol=1e-6)


def test_perturb_codes_scales_with_spread_and_is_seeded():
    codes = torch.zeros(2000, 3)
    spread = torch.tensor([1.0, 2.0, 0.0])
    noisy = latent.perturb_codes(codes, 0.5, spread, seed=1)
    assert torch.allclose(noisy.std(0), 0.5 * spread, atol=0.05)
    assert torch.equal(noisy, latent.perturb_codes(codes, 0.5, spread, seed=1))
    assert torch.equal(latent.perturb_codes(codes, 0.0, spread), codes)


def test_check_latent_sizes():
    assert check_latent_sizes([16, 2, 16], traversal_latent=16) == [2, 16]
    with pytest.raises(ParameterError):
        check_latent_sizes([2, 8], traversal_latent=16)
    with pytest.raises(ParameterError):
        check_latent_sizes([2, 0])
    with pytest.raises(ParameterError):
        check_latent_sizes([])
