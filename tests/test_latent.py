"""Invariants of the shared latent-space helpers, with a fixed linear 'decoder'."""
import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from latent_notes.checks import ParameterError  # noqa: E402
from latent_notes.experiments import latent  # noqa: E402
from latent_notes.models.common import batched, fit_gaussian, sample_gaussian  # noqa: E402

D, C, H = 4, 1, 6
WEIGHTS = torch.randn(D, C * H * H, generator=torch.Generator().manual_seed(0))


def decode(z):
    """A deterministic toy decoder: codes (B, D) → images (B, C, H, H) in [0, 1]."""
    return torch.sigmoid(z @ WEIGHTS).view(-1, C, H, H)


def encode(x):
    return x.flatten(1)[:, :D]


def test_batched_encode_and_decode_return_cpu_tensors_in_order():
    images = torch.rand(10, C, H, H)
    sizes = []

    def counting_encode(x):
        sizes.append(len(x))
        return encode(x)

    codes = batched(counting_encode, images, "cpu", batch_size=3)
    assert sizes == [3, 3, 3, 1]  # every image once, in batches of at most batch_size
    assert codes.shape == (10, D) and codes.device.type == "cpu"
    assert torch.equal(codes, encode(images))
    out = batched(decode, codes, "cpu", batch_size=4)
    assert out.shape == (10, C, H, H)
    assert torch.allclose(out, decode(codes))
    assert not out.requires_grad  # results are detached
    assert batched(decode, torch.empty(0, D), "cpu").numel() == 0


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


def test_fit_and_sample_gaussian_recover_moments():
    g = torch.Generator().manual_seed(1)
    true_cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]])
    codes = torch.randn(20000, 2, generator=g) @ torch.linalg.cholesky(true_cov).T + 3.0
    mean, cov = fit_gaussian(codes)
    assert mean.shape == (2,) and cov.shape == (2, 2)
    assert torch.allclose(mean, torch.full((2,), 3.0), atol=0.05)
    assert torch.allclose(cov, true_cov, atol=0.08)
    samples = sample_gaussian(mean, cov, 20000, seed=3)
    assert samples.shape == (20000, 2)
    assert torch.allclose(samples.mean(0), mean, atol=0.05)
    assert torch.allclose(torch.cov(samples.T), cov, atol=0.08)
    assert torch.equal(samples, sample_gaussian(mean, cov, 20000, seed=3))  # seeded
    assert not torch.equal(samples, sample_gaussian(mean, cov, 20000, seed=4))
    # a degenerate (rank-1) covariance still gives finite draws, on its line
    line = torch.tensor([[1.0, 2.0], [2.0, 4.0]])
    flat = sample_gaussian(torch.zeros(2), line, 100, seed=0)
    assert torch.isfinite(flat).all()
    assert torch.allclose(flat[:, 1], 2 * flat[:, 0], atol=2e-2)


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


def test_perturb_codes_adds_seeded_noise_in_units_of_the_spread():
    g = torch.Generator().manual_seed(3)
    codes = torch.randn(4000, D, generator=g) + 5.0
    spread = torch.tensor([1.0, 0.5, 0.0, 2.0])
    before = codes.clone()
    noisy = latent.perturb_codes(codes, 0.3, spread, seed=7)
    assert torch.equal(codes, before)  # the codes given are left alone
    moved = noisy - codes
    assert torch.allclose(moved.std(0), 0.3 * spread, atol=0.03)
    assert torch.allclose(moved.mean(0), torch.zeros(D), atol=0.05)
    assert torch.equal(moved[:, 2], torch.zeros(len(codes)))  # no spread: no noise
    assert torch.equal(noisy, latent.perturb_codes(codes, 0.3, spread, seed=7))
    assert not torch.equal(noisy, latent.perturb_codes(codes, 0.3, spread, seed=8))


def test_nearest_distance():
    reference = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    assert latent.nearest_distance(reference, reference) == 0.0
    assert latent.nearest_distance(torch.tensor([[3.0, 4.0], [10.0, 1.0]]), reference) == 3.0
