import pytest
import torch

from latent_notes.book.results import Results
from latent_notes.experiments import compare
from latent_notes.experiments.metrics import classifier_features, gaussian_stats
from latent_notes.models.classifier import CNN, CNNConfig
from latent_notes.models.vqvae2 import VQVAE2, VQVAE2Config


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


def test_most_used_codes_are_sorted_by_use():
    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(width=8, res_channels=4, embed_dim=4, codebook_size_top=8,
                                codebook_size_bottom=16)).eval()
    images = torch.rand(20, 1, 28, 28)
    top = model.quantise(images).codes_top
    counts = torch.bincount(top.flatten(), minlength=8)
    used = compare.most_used_codes(model, images, "cpu", 3)
    assert len(used) == 3
    assert counts[used].tolist() == sorted(counts.tolist(), reverse=True)[:3]


def test_summary_figure_has_a_panel_per_metric(tmp_path):
    results = Results("05_comparison", "digits", tmp_path, label="comparison")
    for i, model in enumerate(["ae", "vae", "vqvae2"]):
        for metric in compare.SUMMARY_METRICS:
            results.add(model, metric, 0.5 + i)
    fig = compare.summary_figure(results.frame, "test")
    assert len(fig.axes) == 6
    assert all(len(ax.patches) == 3 for ax in fig.axes)
