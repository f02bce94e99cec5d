"""The convolutional autoencoder: shapes, ranges, the cache round trip and its chapter helpers."""
import pytest
import torch

from latent_notes import autoencoder as ae
from latent_notes import latent
from latent_notes.cache import load_checkpoint
from latent_notes.data import load_data
from latent_notes.train import ParameterError


@pytest.mark.parametrize("channels,image_size", [(1, 28), (3, 32), (3, 64), (1, 32)])
@pytest.mark.parametrize("latent_size", [2, 16, 128])
def test_encode_decode_shapes_and_range(channels, image_size, latent_size):
    model = ae.Autoencoder(ae.AEConfig(latent_size=latent_size, channels=channels,
                                       image_size=image_size, width=8)).eval()
    x = torch.rand(3, channels, image_size, image_size)
    codes = model.encode(x)
    assert codes.shape == (3, latent_size)
    recon = model.decode(codes)
    assert recon.shape == x.shape
    assert recon.min() >= 0 and recon.max() <= 1
    out = model(x)
    assert isinstance(out, ae.AEOutput)
    assert torch.allclose(out.recon, recon) and torch.allclose(out.codes, codes)


def test_halvings_give_exact_sizes():
    assert [ae.halvings(n) for n in (28, 32, 64, 8, 7)] == [2, 2, 3, 0, 0]
    assert ae.Autoencoder(ae.AEConfig(image_size=28)).side == 7
    assert ae.Autoencoder(ae.AEConfig(image_size=64, channels=3)).side == 8


@pytest.mark.parametrize("config", [dict(image_size=7), dict(channels=2), dict(latent_size=0)])
def test_bad_configs_raise_a_parameter_error(config):
    with pytest.raises(ParameterError):
        ae.Autoencoder(ae.AEConfig(**config))


def test_reconstruction_loss_is_the_per_pixel_mse():
    model = ae.Autoencoder(ae.AEConfig(latent_size=4, width=8)).eval()
    x = torch.rand(5, 1, 28, 28)
    terms = ae.reconstruction_loss(model, x, None)
    assert torch.isclose(terms["loss"], ((model(x).recon - x) ** 2).mean())
    assert ae.reconstruction_mse(model, x, "cpu", batch_size=2) == pytest.approx(
        terms["loss"].item(), rel=1e-5)


def test_train_autoencoder_learns_caches_and_rebuilds_from_the_checkpoint(tmp_path):
    data = load_data("digits", subset=200)
    kwargs = dict(epochs=3, seed=0, device=torch.device("cpu"), batch_size=32, width=8,
                  cache_dir=tmp_path)
    first = ae.train_autoencoder(data, 4, **kwargs)
    assert first.status == "trained"
    history = first.history
    assert list(history["epoch"]) == [1, 2, 3]
    assert history["test_loss"].iloc[-1] < history["test_loss"].iloc[0]
    second = ae.train_autoencoder(data, 4, **kwargs)
    assert second.status == "loaded"
    x = data.test.images[:16]
    assert torch.allclose(first.model(x).recon, second.model(x).recon, atol=1e-6)
    alias = tmp_path / f"{ae.ae_alias('digits', 4)}.pt"
    rebuilt = load_checkpoint(alias)  # the config inside the file rebuilds the model
    assert rebuilt.model.config == ae.AEConfig(latent_size=4, channels=1, image_size=28, width=8)
    with pytest.raises(ParameterError):
        ae.train_autoencoder(data, 4, **{**kwargs, "lr": -1.0})


def test_traversal_and_interpolation_grids_with_the_model():
    model = ae.Autoencoder(ae.AEConfig(latent_size=6, width=8)).eval()
    x = torch.rand(2, 1, 28, 28)
    z = latent.encode_all(model.encode, x, "cpu")
    values = torch.arange(-1, 1.001, 0.25)
    grid = latent.traverse(model.decode, z[0], values)
    assert grid.shape == (6, 9, 1, 28, 28)
    frames = latent.interpolate(model.decode, z[0], z[1], steps=9)
    assert frames.shape == (9, 1, 28, 28)
    ends = model.decode(z)
    assert torch.allclose(frames[0], ends[0], atol=1e-6)
    assert torch.allclose(frames[-1], ends[1], atol=1e-6)


def test_add_noise_scales_with_spread_and_is_seeded():
    codes = torch.zeros(2000, 3)
    spread = torch.tensor([1.0, 2.0, 0.0])
    noisy = ae.add_noise(codes, 0.5, spread, seed=1)
    assert torch.allclose(noisy.std(0), 0.5 * spread, atol=0.05)
    assert torch.equal(noisy, ae.add_noise(codes, 0.5, spread, seed=1))
    assert torch.equal(ae.add_noise(codes, 0.0, spread), codes)


def test_check_latent_sizes():
    assert ae.check_latent_sizes([16, 2, 16], traversal_latent=16) == [2, 16]
    with pytest.raises(ParameterError):
        ae.check_latent_sizes([2, 8], traversal_latent=16)
    with pytest.raises(ParameterError):
        ae.check_latent_sizes([2, 0])
    with pytest.raises(ParameterError):
        ae.check_latent_sizes([])
