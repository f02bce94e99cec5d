"""The gated PixelCNN prior: causal masks (checked through gradients), conditioning, sampling,
and sampling a VQ-VAE-2 through its attached priors."""
import pytest
import torch

from latent_notes.checks import ParameterError
from latent_notes.families import PRIOR, CodeData, score_on_test, train
from latent_notes.models.common import draw_labels, seeded
from latent_notes.models.pixelcnn import (
    PixelCNN,
    PixelCNNConfig,
    prior_config,
    prior_inputs,
    prior_loss,
    upsample_codes,
)
from latent_notes.models.vqvae2 import VQVAE2, Codes, VQVAE2Config
from latent_notes.store.cache import Run
from latent_notes.training import TrainConfig

TINY_VQ = dict(width=8, res_channels=4, embed_dim=4, codebook_size_top=6, codebook_size_bottom=7)


def dependence(model, g, position, **condition):
    """|d logits[position] / d input| summed over channels: (G, G) map of what the output saw."""
    x = torch.randn(1, model.config.channels, g, g, requires_grad=True)
    logits = model.logits_from_embedded(x, model.context(**condition))
    i, j = position
    logits[0, :, i, j].sum().backward()
    return x.grad[0].abs().sum(0)


@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("conditioned", [False, True])
def test_masks_are_causal(kernel_size, conditioned):
    torch.manual_seed(0)
    g = 6
    cfg = PixelCNNConfig(codebook_size=7, grid_size=g, channels=8, layers=4,
                         kernel_size=kernel_size, num_classes=3 if conditioned else 0,
                         cond_codebook_size=5 if conditioned else 0)
    model = PixelCNN(cfg)
    condition = ({"labels": torch.tensor([1]), "cond": torch.randint(0, 5, (1, g, g))}
                 if conditioned else {})
    for i in range(g):
        for j in range(g):
            grad = dependence(model, g, (i, j), **condition)
            order = torch.arange(g * g).view(g, g)
            future = order >= i * g + j  # the position itself and everything after it
            assert grad[future].abs().max() == 0, f"output ({i},{j}) sees its own or later inputs"


def test_no_blind_spot():
    """With enough layers every earlier position is seen, including those up and to the right."""
    torch.manual_seed(0)
    g = 5
    model = PixelCNN(PixelCNNConfig(codebook_size=4, grid_size=g, channels=8, layers=6))
    grad = dependence(model, g, (3, 2))
    seen = grad > 0
    order = torch.arange(g * g).view(g, g)
    assert seen[order < 3 * g + 2].all()


def test_logits_shape_and_loss_is_bits():
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(codebook_size=16, grid_size=4, channels=8, layers=2))
    codes = torch.randint(0, 16, (3, 4, 4))
    logits = model(codes)
    assert logits.shape == (3, 16, 4, 4)
    terms = prior_loss(model, codes[:, None], torch.zeros(3, dtype=torch.long))
    bits = terms["bits_per_code"]
    assert 0 < bits.item() < 8  # near log2(16) = 4 bits for an untrained model
    nats = torch.nn.functional.cross_entropy(logits, codes)
    assert torch.allclose(bits, nats / torch.log(torch.tensor(2.0)))  # cross-entropy / ln 2
    assert torch.equal(terms["loss"], bits)


def test_prior_loss_feeds_the_condition_and_labels_it_was_built_for():
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(codebook_size=5, grid_size=4, channels=8, layers=2,
                                    num_classes=3, cond_codebook_size=4))
    bottom, top = torch.randint(0, 5, (2, 4, 4)), torch.randint(0, 4, (2, 2, 2))
    labels = torch.tensor([0, 2])
    x = prior_inputs(top, bottom, "bottom")
    expected = torch.nn.functional.cross_entropy(model(bottom, labels, upsample_codes(top, 2)),
                                                 bottom)
    bits = prior_loss(model, x, labels)["bits_per_code"]
    assert torch.allclose(bits, expected / torch.log(torch.tensor(2.0)))


def test_condition_must_match_config():
    model = PixelCNN(PixelCNNConfig(codebook_size=4, grid_size=4, channels=8, layers=2,
                                    num_classes=10))
    with pytest.raises(ParameterError, match="num_classes"):
        model(torch.zeros(1, 4, 4, dtype=torch.long))  # labels missing
    with pytest.raises(ParameterError, match="cond_codebook_size"):
        model(torch.zeros(1, 4, 4, dtype=torch.long), torch.tensor([0]),
              cond=torch.zeros(1, 4, 4, dtype=torch.long))  # a map it has no network for
    with pytest.raises(ParameterError, match="temperature"):
        model.sample(2, torch.tensor([0, 1]), temperature=0)


@pytest.mark.parametrize("options,named", [(dict(kernel_size=4), "kernel_size"),
                                           (dict(kernel_size=1), "kernel_size"),
                                           (dict(num_classes=-1), "num_classes"),
                                           (dict(num_classes=2.5), "num_classes"),
                                           (dict(cond_codebook_size=-3), "cond_codebook_size"),
                                           (dict(channels=0), "channels"),
                                           (dict(layers=0), "layers"),
                                           (dict(codebook_size=0), "codebook_size")])
def test_config_rejects_impossible_values(options, named):
    assert PixelCNNConfig().kernel_size == 3  # every field has a default
    with pytest.raises(ParameterError, match=named):
        PixelCNNConfig(**options)


def test_sample_shapes_and_range():
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(codebook_size=5, grid_size=4, channels=8, layers=2,
                                    num_classes=2, cond_codebook_size=3))
    codes = model.sample(3, torch.tensor([0, 1, 1]), cond=torch.randint(0, 3, (3, 4, 4)),
                         temperature=0.7)
    assert codes.shape == (3, 4, 4) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 5


def test_low_temperature_picks_the_mode():
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(codebook_size=6, grid_size=3, channels=8, layers=2))
    a = model.sample(4, temperature=1e-4)
    assert (a == a[0]).all()  # (near) greedy decoding: every sample the same
    # ... and that sample is the greedy one: each code the argmax given the codes before it
    logits = model(a[:1])
    assert torch.equal(logits.argmax(1), a[:1])


def test_prior_inputs_and_upsampling():
    top = torch.arange(4).view(1, 2, 2)
    assert upsample_codes(top, 2)[0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1],
                                                 [2, 2, 3, 3], [2, 2, 3, 3]]
    bottom = torch.randint(0, 9, (1, 4, 4))
    assert torch.equal(prior_inputs(top, bottom, "top"), top[:, None])
    both = prior_inputs(top, bottom, "bottom")
    assert both.shape == (1, 2, 4, 4)
    assert torch.equal(both[:, 0], bottom) and torch.equal(both[:, 1], upsample_codes(top, 2))


def tiny_priors(vq: VQVAE2, num_classes: int):
    c = vq.config
    top = PixelCNN(PixelCNNConfig(codebook_size=c.codebook_size_top, grid_size=c.top_grid,
                                  channels=8, layers=2, num_classes=num_classes))
    bottom = PixelCNN(PixelCNNConfig(codebook_size=c.codebook_size_bottom,
                                     grid_size=c.bottom_grid, channels=8, layers=2,
                                     num_classes=num_classes,
                                     cond_codebook_size=c.codebook_size_top))
    return top, bottom


@pytest.mark.parametrize("channels,image_size", [(1, 28), (3, 32)])
def test_vqvae2_samples_through_its_attached_priors(channels, image_size):
    torch.manual_seed(0)
    vq = VQVAE2(VQVAE2Config(channels=channels, image_size=image_size, **TINY_VQ))
    top, bottom = tiny_priors(vq, num_classes=3)
    with pytest.raises(ParameterError, match="attach_priors"):
        vq.sample(2, seed=0)  # no priors yet
    with pytest.raises(ParameterError, match="temperature"):
        vq.attach_priors(top, bottom, temperature=0)
    assert vq.attach_priors(top, bottom, temperature=0.9) is vq
    labels = torch.tensor([0, 1, 2])
    images = vq.sample(3, seed=4, labels=labels)
    assert images.shape == (3, channels, image_size, image_size)
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, vq.sample(3, seed=4, labels=labels))  # seeded
    # Ancestral sampling: top codes from the top prior, bottom codes given them, then decoded.
    with seeded(4):
        codes_top = top.sample(3, labels, temperature=0.9)
        codes_bottom = bottom.sample(3, labels, cond=upsample_codes(codes_top, 2),
                                     temperature=0.9)
    with torch.no_grad():
        assert torch.allclose(images, vq.decode_code(codes_top, codes_bottom), atol=1e-6)
    # No labels: uniform ones drawn with the seed.
    assert torch.equal(vq.sample(3, seed=4), vq.sample(3, seed=4, labels=draw_labels(3, 3, 4)))
    # A temperature given to sample overrides the attached one.
    override = vq.sample(3, seed=4, labels=labels, temperature=0.5)
    assert torch.equal(override, vq.attach_priors(top, bottom, 0.5).sample(3, seed=4,
                                                                            labels=labels))


def test_unconditional_priors_ignore_labels():
    torch.manual_seed(0)
    vq = VQVAE2(VQVAE2Config(**TINY_VQ))
    vq.attach_priors(*tiny_priors(vq, num_classes=0))
    images = vq.sample(2, seed=1)
    assert images.shape == (2, 1, 28, 28)
    assert torch.equal(images, vq.sample(2, seed=1, labels=torch.tensor([0, 1])))


def test_prior_config_reads_grid_and_codebooks_from_the_vqvae2():
    vq = VQVAE2Config(**TINY_VQ)
    top = prior_config(vq, "top", channels=8, layers=3, num_classes=10)
    assert (top.codebook_size, top.grid_size, top.cond_codebook_size) == (6, vq.top_grid, 0)
    assert (top.channels, top.layers, top.num_classes) == (8, 3, 10)
    bottom = prior_config(vq, "bottom")
    assert (bottom.codebook_size, bottom.grid_size, bottom.cond_codebook_size) == (
        7, vq.bottom_grid, 6)
    with pytest.raises(ParameterError, match="level"):
        prior_config(vq, "middle")


def random_codes(n, seed):
    g = torch.Generator().manual_seed(seed)
    return Codes(torch.randint(0, 6, (n, 4, 4), generator=g),
                 torch.randint(0, 7, (n, 8, 8), generator=g),
                 torch.randint(0, 3, (n,), generator=g))


def test_train_prior_on_code_grids_is_cached_per_source(tmp_path):
    codes = CodeData(random_codes(64, 0), random_codes(16, 1), source="vqvae2-abc", name="tiny")
    config = prior_config(VQVAE2Config(**TINY_VQ), "bottom", channels=8, layers=2, num_classes=3)
    recipe = TrainConfig(epochs=1, batch_size=32)
    kw = dict(run=Run.here(0, "cpu", tmp_path))
    first = train(PRIOR, codes, config, recipe, **kw)
    assert first.status == "trained" and first.path.name.startswith("prior-bottom-class")
    assert first.model.config == config
    assert first.config["data"] == {"codes_of": "vqvae2-abc", "n_train": 64}
    bits = score_on_test(PRIOR, first, codes, **kw)["test_bits_per_code"]
    assert 0 < bits < 2 * 3  # random codes of 7 values: about log2(7) ≈ 2.8 bits
    assert train(PRIOR, codes, config, recipe, **kw).status == "loaded"
    other = codes._replace(source="vqvae2-def")  # another model's codes
    assert train(PRIOR, other, config, recipe, **kw).status == "trained"
