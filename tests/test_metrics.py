import numpy as np
import pytest
import torch

from latent_notes.experiments.metrics import (
    classifier_features,
    frechet_distance,
    gaussian_stats,
    mse_per_image,
    predict,
    psnr,
    psnr_per_image,
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


def test_psnr():
    x = torch.zeros(2, 1, 4, 4)
    assert psnr(x, x + 0.1) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 → 20 dB
    y = torch.stack([x[0] + 0.1, x[1] + 0.01])
    assert mse_per_image(x, y).tolist() == pytest.approx([0.01, 1e-4])
    assert psnr_per_image(x, y).tolist() == pytest.approx([20.0, 40.0], abs=1e-3)
    assert psnr(x, y) == pytest.approx(30.0, abs=1e-3)  # the mean of the per-image dB
    assert psnr(x * 255, y * 255, max_value=255) == pytest.approx(30.0, abs=1e-3)
    assert np.isfinite(psnr(x, x))  # identical images: capped, not infinite


class Halver(torch.nn.Module):
    """A 'model' whose reconstruction is half the image."""

    def reconstruct(self, x):
        return x / 2


def test_reconstruction_scores_cover_every_image():
    images = torch.rand(1200, 1, 4, 4)  # more than one batch
    scores = reconstruction_scores(Halver(), images, "cpu")
    assert scores["test_mse"] == pytest.approx(float((images / 2).pow(2).mean()), rel=1e-6)
    assert scores["psnr"] == pytest.approx(psnr(images / 2, images), rel=1e-6)


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
