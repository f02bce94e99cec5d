import numpy as np
import pytest
import torch

from latent_notes import compare
from latent_notes.classifier import CNN, CNNConfig
from latent_notes.metrics import classifier_features, gaussian_stats
from latent_notes.results import Results


def test_knn_probe_separates_separable_codes():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 10.0]])
    labels = rng.integers(0, 2, 200)
    codes = centres[labels] + rng.normal(0, 1, (200, 2))
    assert compare.knn_probe(codes[:150], labels[:150], codes[150:], labels[150:], k=3) == 1.0
    shuffled = rng.permutation(labels)  # labels unrelated to the codes: near chance
    assert compare.knn_probe(codes[:150], shuffled[:150], codes[150:], shuffled[150:]) < 0.8


def test_sample_scores_are_zero_for_the_reference_itself():
    torch.manual_seed(0)
    judge = CNN(CNNConfig(arch="cnn3x3", width=4)).eval()
    images = torch.rand(64, 1, 28, 28)
    reference = gaussian_stats(classifier_features(judge, images, "cpu"))
    same = compare.sample_scores(judge, images, reference, "cpu")
    other = compare.sample_scores(judge, images * 0.2, reference, "cpu")
    assert same["fid_cnn"] == pytest.approx(0, abs=1e-3)
    assert other["fid_cnn"] > same["fid_cnn"] + 1e-3
    assert 0.1 <= same["sample_confidence"] <= 1.0


def test_summary_figure_has_a_panel_per_metric(tmp_path):
    results = Results("05_comparison", "digits", tmp_path, label="comparison")
    for i, model in enumerate(["ae", "vae", "vqvae2"]):
        for metric in compare.SUMMARY_METRICS:
            results.add(model, metric, 0.5 + i)
    fig = compare.summary_figure(results.frame, "test")
    assert len(fig.axes) == 6
    assert all(len(ax.patches) == 3 for ax in fig.axes)


def test_versus_words_follow_the_numbers():
    assert compare.versus(0.95, 0.90) == "better than"
    assert compare.versus(0.90, 0.95) == "less well than"
    assert compare.versus(0.902, 0.90) == "about as well as"
    assert compare.versus(0.902, 0.90, tolerance=0.001) == "better than"
