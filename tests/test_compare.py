import numpy as np
import pytest
import torch

from latent_notes.book.results import Results
from latent_notes.checks import ParameterError
from latent_notes.experiments import compare, vq_experiments
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


class PixelsAsCode(torch.nn.Module):
    """A 'model' whose code is the image itself: its latent path is the pixel blend."""

    def encode(self, x):
        return x.flatten(1)

    def decode(self, z):
        return z.unflatten(1, (1, 28, 28))


def test_interpolation_frames_are_the_inner_points_of_seeded_pairs():
    images = torch.rand(30, 1, 28, 28)
    frames, rest = compare.interpolation_frames({"same": PixelsAsCode()}, images, pairs=4,
                                                steps=5, device="cpu", seed=1)
    assert frames["pixels"].shape == (4 * 3, 1, 28, 28) and len(rest) == 30 - 8
    assert torch.allclose(frames["same"], frames["pixels"], atol=1e-6)  # a code of pixels
    # the first pair's middle frame is the mean of its two ends; no end is in the rest
    order = torch.randperm(30, generator=torch.Generator().manual_seed(1))
    a, b = images[order[0]], images[order[4]]
    assert torch.allclose(frames["pixels"][1], (a + b) / 2, atol=1e-6)
    ends = {order[i].item() for i in range(8)}
    assert all(not any(torch.equal(r, images[i]) for i in ends) for r in rest)
    again, _ = compare.interpolation_frames({}, images, pairs=4, steps=5, device="cpu", seed=1)
    assert torch.equal(again["pixels"], frames["pixels"])
    with pytest.raises(Exception, match="pairs"):
        compare.interpolation_frames({}, images, pairs=16, steps=5, device="cpu")


def test_frechet_to_real_puts_real_images_at_the_floor_and_a_blend_above_it():
    torch.manual_seed(0)
    judge = CNN(CNNConfig(arch="cnn3x3", width=4)).eval()
    real = (torch.rand(300, 1, 28, 28) > 0.7).float()  # sharp 'strokes'
    other_real = (torch.rand(300, 1, 28, 28) > 0.7).float()
    blurred = torch.full((80, 1, 28, 28), 0.3) + 0.05 * torch.rand(80, 1, 28, 28)
    scores = compare.frechet_to_real(judge, {"blend": blurred}, real, other_real, "cpu")
    assert set(scores) == {"real images (floor)", "blend"}
    assert scores["blend"] > 2 * scores["real images (floor)"]
    with pytest.raises(Exception, match="at least 80"):
        compare.frechet_to_real(judge, {"blend": blurred}, real[:50], other_real, "cpu")


def test_a_vaes_units_are_ranked_by_kl_and_an_aes_by_spread():
    from latent_notes.models.autoencoder import AEConfig, Autoencoder
    from latent_notes.models.vae import VAE, VAEConfig

    torch.manual_seed(0)
    vae = VAE(VAEConfig(latent_size=5, width=4, fc_width=16)).eval()
    with torch.no_grad():  # only coordinates 3 and 1 carry anything, 3 the most
        for head in (vae.to_mu, vae.to_logvar):
            head.weight.zero_()
            head.bias.zero_()
        vae.to_mu.weight[3].normal_(0, 10.0)
        vae.to_mu.weight[1].normal_(0, 1.0)
    images = torch.rand(16, 1, 28, 28)
    dims, how = compare.ranked_units(vae, images, "cpu", 2)
    assert dims.tolist() == [3, 1] and how == "mean KL"
    ae = Autoencoder(AEConfig(latent_size=4, width=4)).eval()
    dims, how = compare.ranked_units(ae, images, "cpu", 4)
    spread = ae.encode(images).std(0)
    assert spread[dims].tolist() == sorted(spread.tolist(), reverse=True) and "spread" in how


def test_a_change_confined_to_a_top_codes_cell_is_all_inside_its_box():
    config = VQVAE2Config(width=8, res_channels=4, embed_dim=4, codebook_size_top=8,
                          codebook_size_bottom=16)  # 28 px, padded to 32, a 4x4 top grid
    rows, cols = vq_experiments.code_box(config, (0, 0))
    assert (rows.start, rows.stop, cols.start, cols.stop) == (0, 6, 0, 6)  # 8 px less 2 of pad
    rows, cols = vq_experiments.code_box(config, (2, 1))
    assert (rows.start, rows.stop, cols.start, cols.stop) == (14, 22, 6, 14)
    reference = torch.zeros(1, 28, 28)
    frames = torch.zeros(3, 1, 28, 28)
    frames[:, :, 14:22, 6:14] = 0.5
    effect = compare.unit_effect(frames, reference, (rows, cols))
    assert effect["share_inside"] == pytest.approx(1.0)
    assert effect["mean_change"] == pytest.approx(0.5 * 64 / 784)
    frames[:, :, 0, 0] = 1.0  # some change outside
    assert compare.unit_effect(frames, reference, (rows, cols))["share_inside"] < 1.0


# -- generation: with and without a label, over seeded draws ---------------------------------------

def vqvae2_with_priors(label_dropout: float):
    from latent_notes.models.pixelcnn import PixelCNN, prior_config

    torch.manual_seed(0)
    config = VQVAE2Config(width=8, res_channels=4, embed_dim=4, codebook_size_top=8,
                          codebook_size_bottom=16)
    model = VQVAE2(config)
    model.attach_priors(*[PixelCNN(prior_config(config, level, channels=8, layers=2,
                                                num_classes=3, label_dropout=label_dropout))
                          for level in ("top", "bottom")])
    return model.eval()


def test_draw_samples_with_and_without_a_label():
    model = vqvae2_with_priors(0.1)
    free = compare.draw_samples(model, 4, seed=2)
    assert free.shape == (4, 1, 28, 28)
    assert torch.equal(free, compare.draw_samples(model, 4, seed=2))  # seeded
    assert not torch.equal(free, compare.draw_samples(model, 4, seed=3))
    # unconditional: the priors' "no label" index; conditional: uniform labels of the seed
    assert torch.equal(free, model.sample(4, seed=2, labels=torch.full((4,), 3)))
    assert torch.equal(compare.draw_samples(model, 4, seed=2, conditional=True),
                       model.sample(4, seed=2))
    assert not torch.equal(free, model.sample(4, seed=2))
    with pytest.raises(ParameterError, match="no \"no label\""):
        compare.draw_samples(vqvae2_with_priors(0.0), 4, seed=2)
    mixed = vqvae2_with_priors(0.1)  # a bottom prior without "no label" is refused too
    mixed.attach_priors(mixed.priors.top, vqvae2_with_priors(0.0).priors.bottom)
    with pytest.raises(ParameterError, match="no \"no label\""):
        compare.draw_samples(mixed, 4, seed=2)


def test_a_model_without_labels_has_no_conditional_samples():
    from latent_notes.models.vae import VAE, VAEConfig

    vae = VAE(VAEConfig(latent_size=3, width=4, fc_width=8))
    assert torch.equal(compare.draw_samples(vae, 3, seed=1), vae.sample(3, seed=1))
    with pytest.raises(ParameterError, match="conditional=False"):
        compare.draw_samples(vae, 3, seed=1, conditional=True)


def test_disjoint_draws_share_no_image():
    images = torch.arange(23).float().view(23, 1, 1, 1)
    draws = compare.disjoint_draws(images, 4, 5, seed=0)
    assert [len(d) for d in draws] == [4] * 5
    seen = torch.cat(draws).flatten().tolist()
    assert len(set(seen)) == 20
    assert all(torch.equal(a, b) for a, b in zip(draws, compare.disjoint_draws(images, 4, 5),
                                                 strict=True))
    for n, draws in [(6, 4), (0, 5), (4, 0)]:
        with pytest.raises(ParameterError, match="cannot be taken from 23 images"):
            compare.disjoint_draws(images, n, draws)


def test_frechet_over_draws_is_the_mean_and_std_of_the_draws():
    torch.manual_seed(0)
    judge = CNN(CNNConfig(arch="cnn3x3", width=4)).eval()
    reference = gaussian_stats(classifier_features(judge, torch.rand(64, 1, 28, 28), "cpu"))
    sets = [torch.rand(32, 1, 28, 28) * (0.5 + 0.1 * i) for i in range(3)]
    drawn = compare.frechet_over_draws(judge, sets.__getitem__, reference, 3, "cpu")
    each = [compare.sample_scores(judge, s, reference, "cpu") for s in sets]
    fid = np.array([e["fid_cnn"] for e in each])
    assert drawn.scores["fid_cnn"] == pytest.approx(fid.mean())
    assert drawn.scores["fid_cnn_std"] == pytest.approx(fid.std(ddof=1)) and fid.std() > 0
    assert drawn.scores["sample_confidence"] == pytest.approx(
        np.mean([e["sample_confidence"] for e in each]))
    assert drawn.scores["fid_draws"] == 3 and torch.equal(drawn.first, sets[0])
    for bad in (1, 2.0, True):
        with pytest.raises(ParameterError, match="fid_draws"):
            compare.frechet_over_draws(judge, sets.__getitem__, reference, bad, "cpu")


def test_overlapping_names_the_pairs_the_draws_do_not_separate():
    assert compare.overlapping({"a": 1, "b": 3}, {"a": 1, "b": 1}) == [("a", "b")]
    assert compare.overlapping({"a": 1, "b": 3.1}, {"a": 1, "b": 1}) == []


@pytest.mark.parametrize("vector,spatial,vq,says", [
    (0.02, 0.004, 0.01, "closes the whole gap and goes past VQ-VAE-2 (160% of the gap)"),
    (0.02, 0.015, 0.01, "closes 50% of the gap, and the other 50% goes with quantisation"),
    (0.02, 0.03, 0.01, "closes none of the gap"),
    (0.01, 0.005, 0.02, "no gap for the spatial code to close")])
def test_the_spatial_gap_sentence_follows_the_three_errors(vector, spatial, vq, says):
    sentence = compare.spatial_gap_sentence(vector, spatial, vq)
    assert says in sentence, sentence
    assert f"{spatial:.4f}" in sentence and f"{vq:.4f}" in sentence
    assert ("2.5 times the continuous model's" in sentence) == (spatial == 0.004)


@pytest.mark.parametrize("bits,mse,sampled,says", [
    (400, 0.005, 0.004, "2.0 times more than VQ-VAE-2's codes take under its priors (200, "
                        "class sent first), and it reconstructs better, from μ and from a draw: "
                        "the two bottlenecks sit"),
    (100, 0.005, 0.004, "2.0 times fewer than VQ-VAE-2's codes take under its priors (200, "
                        "class sent first), and it still reconstructs better"),
    (400, 0.02, 0.005, "only when decoded from a draw"),
    (400, 0.005, 0.02, "only when decoded from μ"),
    (400, 0.02, 0.03, "and it reconstructs worse, from μ and from a draw: on this run the "
                      "codebooks"),
    (100, 0.02, 0.03, "and it reconstructs worse, from μ and from a draw: it sits at a lower")])
def test_the_spatial_rate_sentence_follows_bits_and_errors(bits, mse, sampled, says):
    sentence = compare.spatial_rate_sentence(bits, mse, sampled, 200.0, 0.01)
    assert says in sentence and f"carries {bits} bits" in sentence, sentence
    assert "(200, no label)" in compare.spatial_rate_sentence(bits, mse, sampled, 200.0, 0.01,
                                                               how="no label")


@pytest.mark.parametrize("mean,sampled,top,says", [
    (0.01, 0.005, 1.0, "0.0050, 2.0 times lower than from μ: its top grid carries 1.0 of its "
                       "100 bits, next to nothing, and in training"),
    (0.01, 0.005, 50.0, "2.0 times lower than from μ: in training a channel"),
    (0.005, 0.01, 1.0, "0.0100, higher than from μ, as for chapter 3's VAE"),
    (0.01, 0.0098, 1.0, "0.0098, about the same as from μ")])
def test_the_sampled_sentence_follows_both_errors(mean, sampled, top, says):
    assert says in compare.sampled_sentence(mean, sampled, top, 100.0)


def test_the_spatial_vae_sentence_sets_it_beside_both():
    text = compare.spatial_vae_sentence(0.03, 0.006, 0.01)
    assert "reaches 0.0060: 5.0 times below the vector VAE's 0.0300, and below VQ-VAE-2's" in text
    text = compare.spatial_vae_sentence(0.03, 0.04, 0.01)
    assert "not below the vector VAE's 0.0300, and above VQ-VAE-2's 0.0100" in text


def test_the_spatial_vaes_rate_is_its_kl_in_bits_and_the_figure_draws_its_point_and_lines():
    import math

    import pandas as pd

    from latent_notes.checks import ParameterError
    from latent_notes.experiments import rates

    tiny = dict(width=8, res_channels=4, embed_dim=4)
    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(bottleneck="gaussian", **tiny)).eval()
    images = torch.rand(6, 1, 28, 28)
    found = rates.spatial_vae_rate_distortion(model, images, "cpu", seed=3)
    assert found == rates.spatial_vae_rate_distortion(model, images, "cpu", seed=3)  # seeded
    torch.manual_seed(3)
    with torch.no_grad():
        flow, q = model.flow(images, sample=True)  # one draw of the codes per image
    assert found["total"] == pytest.approx(float(q.kl.double().mean()) / math.log(2), rel=1e-6)
    assert found["top"] == pytest.approx(float(q.kl_top.double().mean()) / math.log(2),
                                         rel=1e-6)
    assert found["top"] + found["bottom"] == pytest.approx(found["total"])
    assert found["top"] > 0 and found["bottom"] > 0
    assert found["sampled_mse"] == pytest.approx(float((flow.x_rec - images).pow(2).mean()),
                                                 rel=1e-5)
    with pytest.raises(ParameterError, match="bottleneck='gaussian'"):
        rates.spatial_vae_rate_distortion(
            VQVAE2(VQVAE2Config(bottleneck="continuous", **tiny)), images, "cpu")
    sweep = pd.DataFrame({"beta": [1.0, 4.0], "rate_bits": [30.0, 10.0],
                          "test_mse": [0.01, 0.03]})
    fig = rates.rate_distortion_plot(sweep, {"spatial VAE": (found["total"], 0.005)}, 0.02,
                                     "t", lines={"continuous": 0.001})
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"spatial VAE", "continuous", "AE (a real-valued code: no rate)"} <= set(labels)


@pytest.mark.parametrize("label_dropout", [0.1, 0.0])
def test_code_lengths_add_up_and_without_a_label_only_where_the_priors_learnt_one(label_dropout):
    from latent_notes.experiments import rates

    model = vqvae2_with_priors(label_dropout)
    images, labels = torch.rand(6, 1, 28, 28), torch.arange(6) % 3
    bits = rates.vqvae2_code_bits(model, images, labels, "cpu", batch_size=4)
    config = model.config
    assert bits["storage"] == pytest.approx(config.top_grid ** 2 * 3
                                            + config.bottom_grid ** 2 * 4)  # log2 8, log2 16
    assert bits["given_class"] == pytest.approx(bits["top"] + bits["bottom"])
    assert bits["with_class"] == pytest.approx(bits["given_class"] + np.log2(3))
    if label_dropout:
        assert bits["unconditional"] == pytest.approx(
            bits["top_unconditional"] + bits["bottom_unconditional"])
        assert bits["unconditional"] != pytest.approx(bits["given_class"])  # another input
        assert bits["rate"] == min(bits["unconditional"], bits["with_class"])
    else:
        assert "unconditional" not in bits and bits["rate"] == bits["with_class"]
    # an untrained prior is close to uniform: its code length is near the storage
    assert 0.5 * bits["storage"] < bits["given_class"] < 2 * bits["storage"]


def test_frechet_over_draws_adds_the_kid_given_the_reference_features():
    from latent_notes.experiments.metrics import kernel_inception_distance

    torch.manual_seed(0)
    judge = CNN(CNNConfig(arch="cnn_deep", width=4)).eval()
    features = classifier_features(judge, torch.rand(64, 1, 28, 28), "cpu")
    reference = gaussian_stats(features)
    sets = [torch.rand(32, 1, 28, 28) * (0.5 + 0.1 * i) for i in range(3)]
    drawn = compare.frechet_over_draws(judge, sets.__getitem__, reference, 3, "cpu",
                                       reference_features=features)
    kid = np.array([kernel_inception_distance(classifier_features(judge, s, "cpu"), features)
                    for s in sets])
    assert drawn.scores["kid_cnn"] == pytest.approx(kid.mean())
    assert drawn.scores["kid_cnn_std"] == pytest.approx(kid.std(ddof=1))
    without = compare.frechet_over_draws(judge, sets.__getitem__, reference, 3, "cpu")
    assert "kid_cnn" not in without.scores
    assert without.scores["fid_cnn"] == pytest.approx(drawn.scores["fid_cnn"])


def test_the_rate_is_the_shorter_of_the_two_codes_without_a_class():
    from latent_notes.experiments import rates

    assert rates.shorter_code({"unconditional": 900.0, "with_class": 893.3}) == "with_class"
    assert rates.shorter_code({"unconditional": 880.0, "with_class": 893.3}) == "unconditional"
    assert rates.shorter_code({"unconditional": 5.0, "with_class": 5.0}) == "unconditional"
    assert rates.shorter_code({"with_class": 893.3}) == "with_class"  # no "no label"
    assert rates.shorter_code({"unconditional": np.nan, "with_class": 1.0}) == "with_class"
    bits = rates.vqvae2_code_bits(vqvae2_with_priors(0.1), torch.rand(6, 1, 28, 28),
                                  torch.arange(6) % 3, "cpu", batch_size=4)
    assert bits[rates.shorter_code(bits)] == min(bits["unconditional"], bits["with_class"])


def test_fairness_table_reads_the_models_and_their_checkpoints(tmp_path):
    from dataclasses import asdict

    import pandas as pd

    from latent_notes.models.autoencoder import AEConfig, Autoencoder, build_autoencoder
    from latent_notes.models.common import count_parameters
    from latent_notes.models.vae import VAE, VAEConfig
    from latent_notes.store.checkpoint import save_checkpoint

    ae = Autoencoder(AEConfig(latent_size=4, width=4))
    vae = VAE(VAEConfig(latent_size=3, width=4, fc_width=8, beta=2.0))
    vq = vqvae2_with_priors(0.1)
    save_checkpoint(tmp_path / "ae.pt", ae, {"model": asdict(ae.config),
                                             "train": {"epochs": 7, "batch_size": 32}},
                    build_autoencoder, pd.DataFrame({"loss": [1.0]}), "ae")
    recipes = {"ae": compare.stored_recipe(tmp_path / "ae.pt"),
               "vae": compare.stored_recipe(tmp_path / "missing.pt")}
    assert recipes == {"ae": {"epochs": 7, "batch_size": 32}, "vae": None}
    table = compare.fairness_table({"ae": ae, "vae": vae, "vqvae2": vq}, recipes)
    assert list(table.index) == ["ae", "vae", "vqvae2", "prior (top)", "prior (bottom)"]
    assert table.loc["ae", "parameters"] == count_parameters(ae)
    # VQ-VAE-2's own parameters, without the priors it carries; the priors on their rows
    assert table.loc["vqvae2", "parameters"] == count_parameters(vq) - sum(
        count_parameters(p) for p in (vq.priors.top, vq.priors.bottom))
    assert table.loc["prior (top)", "parameters"] == count_parameters(vq.priors.top)
    assert table.loc["ae", "epochs"] == 7 and pd.isna(table.loc["vae", "epochs"])
    assert table.loc["ae", "training loss"] == "per-pixel MSE"
    assert "Bernoulli" in table.loc["vae", "training loss"]
    assert "β = 2" in table.loc["vae", "training loss"]
    assert "0.25 × commitment" in table.loc["vqvae2", "training loss"]
    assert "EMA (decay 0.99)" in table.loc["vqvae2", "training loss"]
    assert "given the top grid" in table.loc["prior (bottom)", "training loss"]
    assert table.loc["vae", "labels seen"] == "none"
    assert "class-conditional (3 classes)" in table.loc["prior (top)", "labels seen"]
    assert "on 10% of the training images" in table.loc["prior (top)", "labels seen"]
    assert "scored in MSE" in table.loc["vae", "scored here by"]
