"""Invariants of the shared latent-space helpers, with a fixed linear 'decoder'."""
import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from latent_notes import latent  # noqa: E402
from latent_notes.train import ParameterError  # noqa: E402

D, C, H = 4, 1, 6
WEIGHTS = torch.randn(D, C * H * H, generator=torch.Generator().manual_seed(0))


def decode(z):
    """A deterministic toy decoder: codes (B, D) → images (B, C, H, H) in [0, 1]."""
    return torch.sigmoid(z @ WEIGHTS).view(-1, C, H, H)


def encode(x):
    return x.flatten(1)[:, :D]


def test_encode_decode_all_batch_and_return_cpu():
    images = torch.rand(10, C, H, H)
    codes = latent.encode_all(encode, images, "cpu", batch_size=3)
    assert codes.shape == (10, D) and codes.device.type == "cpu"
    assert torch.equal(codes, encode(images))
    out = latent.decode_all(decode, codes, "cpu", batch_size=4)
    assert out.shape == (10, C, H, H)
    assert torch.allclose(out, decode(codes))


@pytest.mark.parametrize("relative", [True, False])
def test_traverse_grid_shape_and_rows_change_one_coordinate(relative):
    z = torch.randn(D)
    values = [-1.0, 0.0, 1.0]
    grid = latent.traverse(decode, z, values, relative=relative)
    assert grid.shape == (D, len(values), C, H, H)
    for d in range(D):
        for j, v in enumerate(values):
            expected = z.clone()
            expected[d] = z[d] + v if relative else v
            assert torch.allclose(grid[d, j], decode(expected[None])[0], atol=1e-6)
    if relative:  # the zero offset reproduces the unchanged code in every row
        assert torch.allclose(grid[:, 1], decode(z[None]).expand(D, -1, -1, -1), atol=1e-6)


def test_traverse_subset_of_dims_and_bad_dims():
    grid = latent.traverse(decode, torch.zeros(D), [0.5, 1.0], dims=[1, 3])
    assert grid.shape == (2, 2, C, H, H)
    with pytest.raises(ParameterError):
        latent.traverse(decode, torch.zeros(D), [0.5], dims=[D])


def test_interpolate_ends_are_the_decoded_end_codes():
    z_a, z_b = torch.randn(D), torch.randn(D)
    frames = latent.interpolate(decode, z_a, z_b, steps=9)
    assert frames.shape == (9, C, H, H)
    # equal up to float rounding: a batch of 9 may take another BLAS path than a batch of 1
    assert torch.allclose(frames[0], decode(z_a[None])[0], atol=1e-6)
    assert torch.allclose(frames[-1], decode(z_b[None])[0], atol=1e-6)
    middle = decode(((z_a + z_b) / 2)[None])[0]
    assert torch.allclose(frames[4], middle, atol=1e-6)


def test_pixel_blend_is_linear_between_the_images():
    x_a, x_b = torch.rand(C, H, H), torch.rand(C, H, H)
    frames = latent.pixel_blend(x_a, x_b, steps=5)
    assert frames.shape == (5, C, H, H)
    assert torch.allclose(frames[0], x_a) and torch.allclose(frames[-1], x_b)
    assert torch.allclose(frames[2], (x_a + x_b) / 2)
    with pytest.raises(ParameterError):
        latent.pixel_blend(x_a, x_b, steps=1)


def test_linear_probe_separates_separable_codes_and_caps_training_set():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 2
    codes = torch.randn(200, 3, generator=g) + 4.0 * labels[:, None]
    accuracy = latent.linear_probe(codes[:150], labels[:150], codes[150:], labels[150:],
                                   max_train=100)
    assert 0.95 <= accuracy <= 1.0


def test_fit_and_sample_gaussian_recover_moments():
    g = torch.Generator().manual_seed(1)
    true_cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]])
    codes = torch.randn(20000, 2, generator=g) @ torch.linalg.cholesky(true_cov).T + 3.0
    mean, cov = latent.fit_gaussian(codes)
    assert mean.shape == (2,) and cov.shape == (2, 2)
    assert torch.allclose(mean, torch.full((2,), 3.0), atol=0.05)
    assert torch.allclose(cov, true_cov, atol=0.08)
    samples = latent.sample_gaussian(mean, cov, 20000, seed=3)
    assert samples.shape == (20000, 2)
    assert torch.allclose(samples.mean(0), mean, atol=0.05)
    assert torch.equal(samples, latent.sample_gaussian(mean, cov, 20000, seed=3))  # seeded


def test_pca_baseline_on_a_tiny_data_set():
    g = torch.Generator().manual_seed(2)
    basis = torch.rand(3, 1, 4, 4, generator=g)
    weights = torch.rand(60, 3, generator=g)
    images = torch.einsum("nk,kchw->nchw", weights, basis)  # exactly rank 3 (plus the mean)
    assert latent.pca_baseline(images[:40], images[40:], n_components=3) < 1e-10
    one = latent.pca_baseline(images[:40], images[40:], n_components=1)
    two = latent.pca_baseline(images[:40], images[40:], n_components=2)
    assert one >= two > 0  # more components never rebuild worse
    with pytest.raises(ParameterError):
        latent.pca_baseline(images[:10], images[40:], n_components=11)


@pytest.mark.parametrize("size", [2, 5])
def test_tsne_map_draws_one_scatter_per_class(size):
    codes = torch.randn(60, size)
    labels = torch.arange(60) % 3
    fig = latent.tsne_map(codes, labels, ["a", "b", "c"], title="map", max_points=50)
    ax = fig.axes[0]
    assert ax.get_title() == "map"
    assert len(ax.collections) == 3
    assert sum(len(c.get_offsets()) for c in ax.collections) == 50
    matplotlib.pyplot.close(fig)


def test_class_index_by_name_then_by_index():
    assert latent.class_index(["0", "1", "2"], "2") == 2
    assert latent.class_index(["cat", "dog"], "1") == 1
    assert latent.class_index(["cat", "dog"], "dog") == 1
    with pytest.raises(ParameterError):
        latent.class_index(["cat", "dog"], "7")


def test_nearest_distance():
    reference = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    assert latent.nearest_distance(reference, reference) == 0.0
    assert latent.nearest_distance(torch.tensor([[3.0, 4.0], [10.0, 1.0]]), reference) == 3.0
