"""The architecture figures are drawn from the models: every shape they print is one the model
computed, and changing a config changes the figure."""
import io

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from latent_notes.experiments import diagrams  # noqa: E402
from latent_notes.models import pixelcnn  # noqa: E402
from latent_notes.models.autoencoder import AEConfig, Autoencoder  # noqa: E402
from latent_notes.models.classifier import CNN, CNNConfig  # noqa: E402
from latent_notes.models.vae import VAE, VAEConfig  # noqa: E402
from latent_notes.models.vqvae2 import VQVAE2, VQVAE2Config  # noqa: E402

VQ = dict(channels=1, image_size=28, width=16, res_channels=8, embed_dim=8)


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def drawn(model) -> tuple[diagrams.Diagram, list[str]]:
    diagram = diagrams.architecture(model)
    fig = diagrams.draw(diagram, "test")
    try:
        return diagram, texts(fig)
    finally:
        plt.close(fig)


def test_every_node_of_a_figure_shows_its_shape_and_its_label():
    diagram, shown = drawn(VAE(VAEConfig(latent_size=6, width=8, fc_width=32)))
    for node in diagram.nodes:
        assert diagrams.shape_text(node.shape) in shown
        assert any(node.label.split()[0] in text for text in shown)
    assert len(shown) == 2 * len(diagram.nodes)


@pytest.mark.parametrize("latent_size", [3, 16])
def test_autoencoder_figure_shows_the_code_the_encoder_computes(latent_size):
    model = Autoencoder(AEConfig(latent_size=latent_size, width=8))
    diagram, shown = drawn(model)
    code = [n for n in diagram.nodes if n.role == "code"]
    assert [n.shape for n in code] == [tuple(model.encode(torch.zeros(2, 1, 28, 28)).shape[1:])]
    assert diagram.nodes[-1].shape == (1, 28, 28)
    assert f"{latent_size}" in shown
    # the first convolution's output has the config's width
    assert diagram.nodes[1].shape == (8, 14, 14)


@pytest.mark.parametrize("latent_size, width", [(2, 8), (16, 12)])
def test_vae_figure_has_two_heads_a_sampling_step_and_the_real_shapes(latent_size, width):
    model = VAE(VAEConfig(latent_size=latent_size, width=width, fc_width=32))
    diagram, shown = drawn(model)
    mu, logvar = model.posterior(torch.zeros(2, 1, 28, 28))
    for key, tensor in (("to_mu", mu), ("to_logvar", logvar), ("sample", mu)):
        assert diagram.node(key).shape == tuple(tensor.shape[1:])
        assert diagram.node(key).role == "code"
    assert ("to_mu", "sample") in diagram.edges and ("to_logvar", "sample") in diagram.edges
    assert diagram.node("features.0").shape == (width, 14, 14)
    assert diagram.nodes[-1].shape == (1, 28, 28)


@pytest.mark.parametrize("top, bottom", [(8, 16), (32, 64)])
def test_vqvae2_figure_shows_both_levels_and_their_codebooks(top, bottom):
    model = VQVAE2(VQVAE2Config(codebook_size_top=top, codebook_size_bottom=bottom, **VQ))
    diagram, shown = drawn(model)
    q = model.quantise(torch.zeros(2, 1, 28, 28))
    assert diagram.node("quantise_top").shape == tuple(q.quant_top.shape[1:])
    assert diagram.node("quantise_bottom").shape == tuple(q.quant_bottom.shape[1:])
    grid_top = diagrams.shape_text(tuple(q.codes_top.shape[1:]))
    assert f"{top} codes" in diagram.node("quantise_top").label
    assert f"{grid_top} grid of codes" in diagram.node("quantise_top").label
    assert f"{bottom} codes" in diagram.node("quantise_bottom").label
    assert {("encoder_bottom", "to_code_bottom"), ("quantise_top", "upsample_top"),
            ("upsample_top", "decoder")} <= set(diagram.edges)
    assert diagram.node("output").shape == (1, 28, 28)


def test_a_continuous_bottleneck_has_no_quantiser_in_its_figure():
    model = VQVAE2(VQVAE2Config(bottleneck="continuous", **VQ))
    diagram, _ = drawn(model)
    assert not [n for n in diagram.nodes if n.key.startswith("quantise")]
    assert all(a in {n.key for n in diagram.nodes} for a, _ in diagram.edges)


@pytest.mark.parametrize("arch, classes", [("cnn_deep", 10), ("cnn5x5", 4)])
def test_classifier_figure_ends_in_one_score_per_class(arch, classes):
    model = CNN(CNNConfig(arch=arch, num_classes=classes, width=8))
    diagram, _ = drawn(model)
    assert diagram.nodes[-1].shape == (classes,)
    assert diagram.nodes[1].shape[0] == 8


@pytest.mark.parametrize("level", ["top", "bottom"])
def test_prior_figure_gives_one_logit_per_code_and_position(level):
    vq = VQVAE2Config(codebook_size_top=8, codebook_size_bottom=16, **VQ)
    config = pixelcnn.prior_config(vq, level, channels=8, layers=3, num_classes=10,
                                   label_dropout=0.1)
    diagram, shown = drawn(pixelcnn.PixelCNN(config))
    g, k = config.grid_size, config.codebook_size
    assert diagram.node("head").shape == (k, g, g)
    assert "3 gated layers" in diagram.node("layers").label
    assert ("cond_net" in diagram.shapes) == (level == "bottom")


def test_a_model_without_a_figure_is_refused():
    with pytest.raises(TypeError, match="no architecture figure"):
        diagrams.architecture(torch.nn.Linear(2, 2))


def test_a_dollar_in_a_title_is_drawn_as_typed_not_as_maths():
    """A chapter's title names the data set, and a folder may be named ``$5_$``."""
    fig = diagrams.draw(diagrams.architecture(Autoencoder(AEConfig(latent_size=2, width=8))),
                        "The autoencoder for folder:$5_$")
    try:
        fig.savefig(io.BytesIO(), format="png")  # mathtext would raise on "5_"
        assert fig.axes[0].get_title().startswith(r"The autoencoder for folder:\$5_\$")
    finally:
        plt.close(fig)
