import numpy as np
import pytest
import torch

from latent_notes.experiments.metrics import (
    classifier_features,
    frechet_distance,
    gaussian_stats,
    predict,
    psnr,
    psnr_of_mse,
    reconstruction_scores,
)
from latent_notes.models.classifier import CNN, CNNConfig


def test_frechet_distance_of_gaussians_in_closed_form():
    # Diagonal covariances commute: d² = ‖Δμ‖² + Σ_i (√a_i − √b_i)².
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0
    assert frechet_distance(mean_a, np.diag(var_a),
                            mean_b, np.diag(var_b)) == pytest.approx(expected)
    # A rotated (non-diagonal) covariance against itself: distance 0.
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    cov = rotation @ np.diag(var_a) @ rotation.T
    assert frechet_distance(mean_a, cov, mean_a, cov) == pytest.approx(0, abs=1e-6)
    # One dimension: (μa − μb)² + (σa − σb)².
    assert frechet_distance(0.0, 4.0, 3.0, 1.0) == pytest.approx(9 + 1)


def test_frechet_distance_from_samples_converges():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 2))
    b = rng.normal(2, 3, (20000, 2))
    d = frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    assert d == pytest.approx(2 * 4 + 2 * (3 - 1) ** 2, rel=0.05)


def test_psnr_is_that_of_the_mse_pooled_over_every_pixel():
    x = torch.zeros(2, 1, 4, 4)
    assert psnr(x, x + 0.1) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 → 20 dB
    assert psnr_of_mse(0.01) == pytest.approx(20.0) and psnr_of_mse(1e-4) == pytest.approx(40.0)
    # per-image MSEs 0.01 and 1e-4: per-image PSNRs 20 and 40 dB, whose mean (30 dB) is not
    # the text's 10 log10(1 / MSE) of the pooled MSE, 0.00505 (22.97 dB)
    y = torch.stack([x[0] + 0.1, x[1] + 0.01])
    pooled = 10 * np.log10(1 / 0.00505)
    assert psnr(x, y) == pytest.approx(pooled, abs=1e-6) and psnr(x, y) < 30.0 - 5
    assert psnr(x * 255, y * 255, max_value=255) == pytest.approx(pooled, abs=1e-6)
    assert psnr(y, x) == psnr(x, y)  # symmetric
    assert np.isfinite(psnr(x, x)) and psnr(x, x) == psnr_of_mse(0.0)  # MSE 0: capped


class Halver(torch.nn.Module):
    """A 'model' whose reconstruction is half the image."""

    def reconstruct(self, x):
        return x / 2


def test_reconstruction_scores_cover_every_image():
    images = torch.rand(1200, 1, 4, 4)  # more than one batch
    scores = reconstruction_scores(Halver(), images, "cpu")
    assert scores["test_mse"] == pytest.approx(float((images / 2).pow(2).mean()), rel=1e-6)
    assert scores["psnr"] == pytest.approx(psnr(images / 2, images), rel=1e-6)
    assert scores["psnr"] == pytest.approx(10 * np.log10(1 / scores["test_mse"]), rel=1e-9)


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return CNN(CNNConfig(arch="cnn3x3", image_size=12, num_classes=4, width=4)).eval()


def test_predict_gives_class_probabilities(cnn):
    images = torch.rand(1100, 1, 12, 12)  # more than one batch of 1000
    probs = predict(cnn, images, "cpu")
    assert isinstance(probs, np.ndarray) and probs.shape == (1100, 4)
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and (probs >= 0).all()
    with torch.no_grad():
        expected = torch.softmax(cnn(images[:7]), 1).numpy()
    assert np.allclose(probs[:7], expected, atol=1e-6)


def test_frechet_distance_in_a_classifiers_features_is_zero_for_the_same_images_only(cnn):
    a, b = torch.rand(200, 1, 12, 12), torch.rand(200, 1, 12, 12) * 0.2
    features = classifier_features(cnn, a, "cpu")
    assert features.shape[0] == 200 and features.ndim == 2

    def distance(x, y):
        return frechet_distance(*gaussian_stats(classifier_features(cnn, x, "cpu")),
                                *gaussian_stats(classifier_features(cnn, y, "cpu")))

    assert distance(a, a) == pytest.approx(0, abs=1e-3)
    assert distance(a, b) > 10 * max(distance(a, a), 1e-6)


def test_kid_is_unbiased_for_one_distribution_and_positive_for_two():
    from latent_notes.experiments.metrics import kernel_inception_distance as kid

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    k = lambda x, y: (x @ y.T / 3 + 1) ** 3  # noqa: E731  the cubic kernel, written out
    brute = (sum(k(a, a)[i, j] for i in range(5) for j in range(5) if i != j) / 20
             + sum(k(b, b)[i, j] for i in range(4) for j in range(4) if i != j) / 12
             - 2 * k(a, b).mean())
    assert kid(a, b) == pytest.approx(brute) and kid(b, a) == pytest.approx(brute)
    # two small samples of one distribution: 0 in expectation (single draws go either way)
    same = np.array([kid(rng.normal(size=(40, 8)), rng.normal(size=(50, 8)))
                     for _ in range(300)])
    assert abs(same.mean()) < 3 * same.std(ddof=1) / np.sqrt(len(same))
    assert (same < 0).any() and (same > 0).any()
    shifted = np.array([kid(rng.normal(size=(40, 8)), rng.normal(0.5, 1, size=(50, 8)))
                        for _ in range(20)])
    assert (shifted > 0).all() and shifted.mean() > 10 * same.std(ddof=1)
    for bad in ((a[:1], b), (a, b[:, :2]), (a[0], b)):
        with pytest.raises(ValueError, match="KID needs"):
            kid(*bad)
