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
    bits_per_code,
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


def test_with_enough_layers_nothing_earlier_lies_beyond_the_field():
    """With enough layers every earlier position is seen, including those up and to the right
    (no blind spot, and nothing beyond the field: chapter 4 measures both)."""
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


# -- label dropout: one prior, with and without the label ----------------------------------------

def test_a_prior_without_label_dropout_is_built_as_before():
    cfg = PixelCNNConfig(codebook_size=5, grid_size=4, channels=8, layers=2, num_classes=3)
    assert cfg.label_dropout == 0 and cfg.label_rows == 3
    keys = set(PixelCNN(cfg).state_dict())
    dropped = PixelCNN(PixelCNNConfig(**{**cfg.__dict__, "label_dropout": 0.1}))
    assert set(dropped.state_dict()) == keys  # the same parameters, one more embedding row
    assert PixelCNN(cfg).layers[0].label_bias.num_embeddings == 3
    assert dropped.layers[0].label_bias.num_embeddings == 4


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_label_dropout_must_be_a_share_below_one(value):
    with pytest.raises(ParameterError, match="label_dropout"):
        PixelCNNConfig(num_classes=3, label_dropout=value)


def test_label_dropout_needs_classes():
    with pytest.raises(ParameterError, match="label_dropout.*num_classes is 0"):
        PixelCNNConfig(label_dropout=0.1)
    # the family's default dropout is left out of a prior without classes
    vq = VQVAE2Config(**TINY_VQ)
    assert prior_config(vq, "top").label_dropout == 0
    assert prior_config(vq, "top", num_classes=10).label_dropout == PRIOR.model_options[
        "label_dropout"]


def test_a_prior_with_label_dropout_samples_and_scores_without_a_label():
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(codebook_size=5, grid_size=4, channels=8, layers=2,
                                    num_classes=3, label_dropout=0.1,
                                    cond_codebook_size=4)).eval()
    cond = torch.randint(0, 4, (6, 4, 4))
    with seeded(1):
        codes = model.sample(6, cond=cond)
    assert codes.shape == (6, 4, 4) and 0 <= codes.min() and codes.max() < 5
    with seeded(1):  # labels=None is the "no label" index, num_classes
        assert torch.equal(codes, model.sample(6, model.no_label(6), cond=cond))
    free = model(codes, None, cond)
    assert free.shape == (6, 5, 4, 4)
    # the null embedding is used: without a label the logits differ from those of any class
    for label in range(3):
        given = model(codes, torch.full((6,), label), cond)
        assert not torch.allclose(free, given)
    assert torch.allclose(free, model(codes, torch.full((6,), 3), cond))


def test_a_prior_without_label_dropout_refuses_to_go_without_a_label():
    model = PixelCNN(PixelCNNConfig(codebook_size=5, grid_size=4, channels=8, layers=2,
                                    num_classes=3))
    with pytest.raises(ParameterError, match="no \"no label\" embedding.*label_dropout"):
        model.sample(2)
    with pytest.raises(ParameterError, match="no \"no label\" embedding"):
        model(torch.zeros(2, 4, 4, dtype=torch.long))


def test_label_dropout_hides_that_share_of_labels_in_training_only():
    model = PixelCNN(PixelCNNConfig(codebook_size=5, grid_size=2, channels=8, layers=1,
                                    num_classes=3, label_dropout=0.25))
    seen = []
    model.layers[0].label_bias.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    labels = torch.zeros(4000, dtype=torch.long)
    codes = torch.zeros(4000, 2, 2, dtype=torch.long)
    torch.manual_seed(0)
    model.train()(codes, labels)
    hidden = float((seen[-1] == 3).float().mean())
    assert 0.22 < hidden < 0.28 and set(seen[-1].tolist()) == {0, 3}
    torch.manual_seed(0)
    model(codes, labels)
    assert torch.equal(seen[-1], seen[-2])  # seeded by torch's global stream
    model.eval()(codes, labels)
    assert (seen[-1] == 0).all()  # evaluation sees every label


def test_bits_per_code_with_and_without_labels():
    torch.manual_seed(0)
    codes = random_codes(20, 0)
    top = PixelCNN(PixelCNNConfig(codebook_size=6, grid_size=4, channels=8, layers=2,
                                  num_classes=3, label_dropout=0.1))
    bits = bits_per_code(top, codes, "cpu", batch_size=7)
    with torch.no_grad():
        logits = top.eval()(codes.top, codes.labels)
    expected = torch.nn.functional.cross_entropy(logits, codes.top) / torch.log(torch.tensor(2.))
    assert bits == pytest.approx(float(expected), rel=1e-5)
    free = bits_per_code(top, codes, "cpu", labelled=False)
    assert free != pytest.approx(bits) and 0 < free < 2 * 2.6  # about log2(6) untrained
    bottom = PixelCNN(PixelCNNConfig(codebook_size=7, grid_size=8, channels=8, layers=2,
                                     cond_codebook_size=6))
    assert 0 < bits_per_code(bottom, codes, "cpu") < 2 * 2.9
    with pytest.raises(ParameterError, match="no \"no label\""):
        bits_per_code(PixelCNN(PixelCNNConfig(codebook_size=6, grid_size=4, channels=8,
                                              layers=2, num_classes=3)), codes, "cpu",
                      labelled=False)


def naive_sample(model, n, labels=None, cond=None, temperature=1.0):
    """The sampler written the obvious way: the whole network once per position."""
    g = model.config.grid_size
    codes = torch.zeros(n, g, g, dtype=torch.long)
    with torch.no_grad():
        context = model.eval().context(labels, cond, n)
        for i in range(g):
            for j in range(g):
                x = model.embed(codes).permute(0, 3, 1, 2)
                logits = model.logits_from_embedded(x, context)[:, :, i, j] / temperature
                codes[:, i, j] = torch.multinomial(torch.softmax(logits, 1), 1)[:, 0]
    return codes


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_the_row_by_row_sampler_draws_what_the_whole_network_would(kernel_size):
    torch.manual_seed(0)
    model = PixelCNN(PixelCNNConfig(codebook_size=6, grid_size=5, channels=8, layers=3,
                                    kernel_size=kernel_size, num_classes=3, label_dropout=0.1,
                                    cond_codebook_size=4))
    labels, cond = torch.tensor([0, 1, 2, 3]), torch.randint(0, 4, (4, 5, 5))
    with seeded(3):
        fast = model.sample(4, labels, cond=cond, temperature=0.8)
    with seeded(3):
        slow = naive_sample(model, 4, labels, cond, temperature=0.8)
    assert torch.equal(fast, slow)
    greedy = model.sample(4, labels, cond=cond, temperature=1e-4)
    with torch.no_grad():  # each code the argmax of forward's logits given the codes before it
        assert torch.equal(model(greedy, labels, cond).argmax(1), greedy)
