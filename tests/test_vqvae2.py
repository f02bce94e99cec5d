"""VQ-VAE-2: shapes for 28/32/64 px and 1/3 channels, its verbs, training through the cache."""
import pytest
import torch

from latent_notes import families
from latent_notes.checks import ParameterError
from latent_notes.data import load_data
from latent_notes.experiments import latent
from latent_notes.families import CodeData, train, train_priors
from latent_notes.models.vqvae2 import VQVAE2, VQVAE2Config, codebook_stats, vqvae2_loss
from latent_notes.store.cache import Run

TINY = dict(width=8, res_channels=4, embed_dim=4, codebook_size_top=8, codebook_size_bottom=16)


@pytest.mark.parametrize("channels,image_size,top,bottom",
                         [(1, 28, 4, 8), (3, 28, 4, 8), (1, 32, 4, 8), (3, 32, 4, 8),
                          (3, 64, 8, 16)])
def test_shapes(channels, image_size, top, bottom):
    config = VQVAE2Config(channels=channels, image_size=image_size, **TINY)
    assert (config.top_grid, config.bottom_grid) == (top, bottom)
    model = VQVAE2(config)
    x = torch.rand(2, channels, image_size, image_size)
    flow, q = model.flow(x)
    assert flow.x_padded.shape[-1] == 8 * top
    assert flow.z_bottom.shape == (2, 8, bottom, bottom)
    assert flow.z_top.shape == (2, 8, top, top)
    assert flow.quant_top.shape == (2, 4, top, top)
    assert (flow.dec_top.shape == flow.quant_bottom.shape == flow.quant_top_up.shape
            == (2, 4, bottom, bottom))
    assert q.codes_top.shape == (2, top, top) and q.codes_bottom.shape == (2, bottom, bottom)
    assert model.encode(x).shape == (2, config.code_length)
    out = model(x)
    assert out.recon.shape == x.shape
    assert out.recon.min() >= 0 and out.recon.max() <= 1


def test_every_way_of_decoding_gives_the_forward_reconstruction_in_eval_mode():
    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(**TINY)).eval()
    x = torch.rand(3, 1, 28, 28)
    q = model.quantise(x)
    recon = model(x).recon
    assert torch.allclose(model.decode_code(q.codes_top, q.codes_bottom), recon, atol=1e-6)
    assert torch.allclose(model.decode_maps(q.quant_top, q.quant_bottom), recon, atol=1e-6)
    assert torch.allclose(model.decode(model.encode(x)), recon, atol=1e-6)  # the flat code
    assert torch.allclose(model.reconstruct(x), recon, atol=1e-6)


def test_eval_mode_leaves_the_codebooks_alone_and_training_moves_them():
    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(**TINY))
    before = model.quantise_top.embed.clone()
    model.eval()
    model(torch.rand(4, 1, 28, 28))
    assert torch.equal(model.quantise_top.embed, before)
    model.train()
    model(torch.rand(4, 1, 28, 28))
    assert not torch.equal(model.quantise_top.embed, before)


def test_interpolating_the_flat_code_blends_the_quantised_maps():
    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(**TINY)).eval()
    a, b = torch.rand(2, 1, 28, 28)
    z = model.encode(torch.stack([a, b]))
    frames = latent.interpolate(model.decode, z[0], z[1], steps=5)
    qa, qb = model.quantise(a[None]), model.quantise(b[None])
    middle = model.decode_maps((qa.quant_top + qb.quant_top) / 2,
                               (qa.quant_bottom + qb.quant_bottom) / 2)
    assert torch.allclose(frames[2], middle[0], atol=1e-5)
    assert torch.allclose(frames[0], model.reconstruct(a[None])[0], atol=1e-5)


def test_edit_code_changes_only_the_given_position():
    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(**TINY)).eval()
    q = model.quantise(torch.rand(1, 1, 28, 28))
    top, bottom = q.codes_top[0], q.codes_bottom[0]
    new = torch.tensor([int(top[1, 2]), (int(top[1, 2]) + 1) % 8])
    images = model.edit_code(top, bottom, "top", (1, 2), new)
    assert images.shape == (2, 1, 28, 28)
    assert torch.allclose(images[0], model.decode_code(top[None], bottom[None])[0], atol=1e-6)
    assert not torch.allclose(images[0], images[1])  # a different code, a different image
    assert torch.equal(top, q.codes_top[0])  # the caller's grid is untouched
    with pytest.raises(ParameterError, match="level"):
        model.edit_code(top, bottom, "middle", (0, 0), new)


def test_gradients_reach_both_encoders():
    model = VQVAE2(VQVAE2Config(**TINY))
    vqvae2_loss(model, torch.rand(4, 1, 28, 28), None)["loss"].backward()
    for module in (model.encoder_bottom, model.encoder_top, model.decoder_top, model.decoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_train_load_priors_and_sample(tmp_path):
    data = load_data("digits", subset=120)
    where = dict(run=Run.here(0, "cpu", tmp_path))
    vqvae2s = families.FAMILIES["vqvae2"]
    config, recipe = vqvae2s.recipe(data, epochs=2, batch_size=32, **TINY)
    first = train(vqvae2s, data, config, recipe, **where)
    assert first.status == "trained"
    for column in ("val_mse", "val_usage_top", "val_usage_bottom", "val_perplexity_top"):
        assert column in first.history and len(first.history[column]) == 2  # per epoch
    stats = codebook_stats(first.model, data.test.images[:50], torch.device("cpu"))
    assert 0 < stats["usage_top"] <= 1 and 1 <= stats["perplexity_top"] <= 8
    assert stats["perplexity_top"] <= stats["usage_top"] * 8 + 1e-6  # never above the codes used
    again = train(vqvae2s, data, config, recipe, **where)
    assert again.status == "loaded"
    assert torch.equal(again.model.quantise_top.embed, first.model.quantise_top.embed)
    codes = CodeData.of(first, data, torch.device("cpu"))
    assert codes.train.top.shape == (120, 4, 4) and codes.train.bottom.shape == (120, 8, 8)
    assert codes.source == first.path.stem
    with pytest.raises(ParameterError, match="priors"):
        first.model.sample(2, seed=0)
    priors = train_priors(first, data, epochs=1, batch_size=32, channels=8, layers=2, codes=codes,
                          **where)
    assert priors["bottom"].model.config.cond_codebook_size == 8
    assert priors["top"].history["val_bits_per_code"].iloc[-1] > 0
    first.model.attach_priors(priors["top"].model, priors["bottom"].model)
    labels = torch.arange(4)
    drawn = first.model.sample(4, seed=3, labels=labels)
    assert drawn.shape == (4, 1, 28, 28) and drawn.min() >= 0 and drawn.max() <= 1
    assert torch.equal(drawn, first.model.sample(4, seed=3, labels=labels))  # seeded
    assert first.model.sample(3, seed=1).shape == (3, 1, 28, 28)  # labels drawn when not given


@pytest.mark.parametrize("options,named", [
    (dict(codebook_size_top=0), "codebook_size_top"), (dict(width=7), "width"),
    (dict(decay=1.0), "decay"), (dict(decay=0.0), "decay"),
    (dict(commitment_weight=-0.1), "commitment_weight"), (dict(embed_dim=0), "embed_dim"),
    (dict(res_blocks=-1), "res_blocks")])
def test_impossible_configs_raise_a_clear_error(options, named):
    with pytest.raises(ParameterError, match=named):
        VQVAE2Config(**options)


def test_unknown_options_are_named():
    data = load_data("digits", subset=50)
    with pytest.raises(ParameterError, match="codebook_size.*options are"):
        families.FAMILIES["vqvae2"].configure(data, codebook_size=3)


# -- the same backbone with another bottleneck ---------------------------------------------------

# The state_dict of a "vq" model before bottlenecks existed, in order (one residual block per
# encoder and decoder): a "vq" model must stay exactly that model, so that its checkpoints and
# the priors trained on its codes mean what they meant.
VQ_KEYS = """
encoder_bottom.0.weight encoder_bottom.0.bias encoder_bottom.2.weight encoder_bottom.2.bias
encoder_bottom.4.weight encoder_bottom.4.bias encoder_bottom.5.body.1.weight
encoder_bottom.5.body.1.bias encoder_bottom.5.body.3.weight encoder_bottom.5.body.3.bias
encoder_top.0.weight encoder_top.0.bias encoder_top.2.weight encoder_top.2.bias
encoder_top.3.body.1.weight encoder_top.3.body.1.bias encoder_top.3.body.3.weight
encoder_top.3.body.3.bias to_code_top.weight to_code_top.bias quantise_top.embed
quantise_top.cluster_size quantise_top.embed_sum decoder_top.0.weight decoder_top.0.bias
decoder_top.1.body.1.weight decoder_top.1.body.1.bias decoder_top.1.body.3.weight
decoder_top.1.body.3.bias decoder_top.3.weight decoder_top.3.bias to_code_bottom.weight
to_code_bottom.bias quantise_bottom.embed quantise_bottom.cluster_size
quantise_bottom.embed_sum upsample_top.weight upsample_top.bias decoder.0.weight
decoder.0.bias decoder.1.body.1.weight decoder.1.body.1.bias decoder.1.body.3.weight
decoder.1.body.3.bias decoder.3.weight decoder.3.bias decoder.5.weight decoder.5.bias
""".split()


def test_a_vq_model_has_exactly_the_state_dict_it_always_had():
    assert VQVAE2Config().bottleneck == "vq"
    for config in (VQVAE2Config(), VQVAE2Config(**TINY)):
        state = VQVAE2(config).state_dict()
        assert list(state) == VQ_KEYS
        d = config.embed_dim
        assert state["to_code_top.weight"].shape == (d, config.width, 1, 1)  # D channels
        assert state["to_code_bottom.weight"].shape == (d, config.width + d, 1, 1)


@pytest.mark.parametrize("bottleneck", ["continuous", "gaussian"])
def test_the_other_bottlenecks_keep_the_backbone_and_drop_the_codebooks(bottleneck):
    vq = VQVAE2(VQVAE2Config(**TINY)).state_dict()
    model = VQVAE2(VQVAE2Config(bottleneck=bottleneck, **TINY))
    keys = model.state_dict()
    assert set(keys) == {k for k in vq if not k.startswith("quantise_")}
    channels = 8 if bottleneck == "gaussian" else 4  # μ and log σ², or the map itself
    assert keys["to_code_top.weight"].shape == (channels, 8, 1, 1)
    assert keys["to_code_bottom.weight"].shape == (channels, 8 + 4, 1, 1)
    for name, tensor in keys.items():
        if not name.startswith("to_code_"):
            assert tensor.shape == vq[name].shape, name  # the same encoders and decoders
    x = torch.rand(3, 1, 28, 28)
    flow, q = model.flow(x)
    assert flow.quant_top.shape == (3, 4, 4, 4) and flow.quant_bottom.shape == (3, 4, 8, 8)
    assert q.codes_top is None and q.codes_bottom is None
    assert (q.kl is not None) == (bottleneck == "gaussian")
    model.eval()
    z = model.encode(x)
    assert z.shape == (3, model.config.code_length)
    assert torch.allclose(model.decode(z), model.reconstruct(x), atol=1e-6)
    assert model(x).recon.shape == x.shape


@pytest.mark.parametrize("bottleneck", ["continuous", "gaussian"])
def test_one_training_step_lowers_the_loss_and_reports_its_terms(bottleneck):
    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(bottleneck=bottleneck, **TINY))
    x = torch.rand(8, 1, 28, 28)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    terms = vqvae2_loss(model, x, None)
    expected = {"loss", "mse"} | ({"kl", "neg_elbo"} if bottleneck == "gaussian" else set())
    assert set(terms) == expected
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = []
    for _ in range(20):
        torch.manual_seed(1)  # the same draw each step: the change is the weights'
        terms = vqvae2_loss(model, x, None)
        optimiser.zero_grad()
        terms["loss"].backward()
        optimiser.step()
        losses.append(terms["loss"].item())
    assert losses[-1] < losses[0]
    assert all(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    for module in (model.encoder_bottom, model.encoder_top, model.decoder_top, model.decoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_the_gaussian_kl_is_the_closed_form_and_the_loss_the_rescaled_negative_elbo():
    from torch.distributions import Normal, kl_divergence

    torch.manual_seed(0)
    config = VQVAE2Config(bottleneck="gaussian", beta=2.0, decoder_std=0.2, **TINY)
    model = VQVAE2(config).eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():  # the pass by hand, at μ (eval mode)
        z_bottom = model.encoder_bottom(torch.nn.functional.pad(x, [2] * 4))
        mu_top, logvar_top = model.to_code_top(model.encoder_top(z_bottom)).chunk(2, 1)
        h = model.to_code_bottom(torch.cat([z_bottom, model.decoder_top(mu_top)], 1))
        mu_bottom, logvar_bottom = h.chunk(2, 1)
        out = model(x)
        terms = vqvae2_loss(model, x, None)

    def kl(mu, logvar):  # torch's own KL between the distributions, summed per image
        q = Normal(mu, torch.exp(0.5 * logvar))
        return kl_divergence(q, Normal(0.0, 1.0)).flatten(1).sum(1)

    expected = kl(mu_top, logvar_top) + kl(mu_bottom, logvar_bottom)
    assert torch.allclose(out.kl, expected, rtol=1e-5)
    with torch.no_grad():
        recon = model.decode_maps(mu_top, mu_bottom)
    assert torch.allclose(out.recon, recon, atol=1e-6)  # eval mode reconstructs from μ
    pixels, var = 28 * 28, 0.2 ** 2
    mse = (recon - x).pow(2).mean()
    assert float(terms["kl"]) == pytest.approx(float(expected.mean()), rel=1e-5)
    assert float(terms["loss"]) == pytest.approx(
        float(mse + 2.0 * 2 * var / pixels * expected.mean()), rel=1e-5)
    neg_elbo = (recon - x).pow(2).flatten(1).sum(1) / (2 * var) + expected  # nats per image
    assert float(terms["neg_elbo"]) == pytest.approx(float(neg_elbo.mean()), rel=1e-5)
    # at β = 1 the loss is the negative ELBO times 2σ²/N
    model.config = VQVAE2Config(bottleneck="gaussian", decoder_std=0.2, **TINY)
    unit = vqvae2_loss(model, x, None)
    assert float(unit["loss"]) == pytest.approx(float(unit["neg_elbo"]) * 2 * var / pixels,
                                                rel=1e-5)


def test_a_gaussian_model_samples_in_training_and_reads_mu_at_evaluation():
    torch.manual_seed(0)
    model = VQVAE2(VQVAE2Config(bottleneck="gaussian", **TINY))
    x = torch.rand(2, 1, 28, 28)
    model.train()
    assert not torch.equal(model(x).recon, model(x).recon)  # two draws
    model.eval()
    assert torch.equal(model(x).recon, model(x).recon)
    model.train()
    assert torch.equal(model.encode(x), model.eval().encode(x))  # μ in either mode


@pytest.mark.parametrize("bottleneck", ["continuous", "gaussian"])
def test_verbs_that_need_codes_refuse_a_model_without_codebooks(bottleneck):
    model = VQVAE2(VQVAE2Config(bottleneck=bottleneck, **TINY)).eval()
    x = torch.rand(1, 1, 28, 28)
    grid = torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 8, 8, dtype=torch.long)
    calls = [("quantise", lambda: model.quantise(x)),
             ("decode_code", lambda: model.decode_code(*grid)),
             ("edit_code", lambda: model.edit_code(grid[0][0], grid[1][0], "top", (0, 0), [1])),
             ("sample", lambda: model.sample(2)),
             ("attach_priors", lambda: model.attach_priors(None, None)),
             ("quantise", lambda: codebook_stats(model, x, torch.device("cpu")))]  # code grids
    for verb, call in calls:
        with pytest.raises(ParameterError, match=rf"{verb} needs discrete codes.*"
                                                 rf"bottleneck='{bottleneck}'.*bottleneck='vq'"):
            call()


def test_a_bottleneck_is_one_of_three_and_names_its_checkpoint():
    with pytest.raises(ParameterError, match="bottleneck must be one of 'vq', 'continuous'"):
        VQVAE2Config(bottleneck="binary")
    with pytest.raises(ParameterError, match="decoder_std"):
        VQVAE2Config(bottleneck="gaussian", decoder_std=0.0)
    data = load_data("digits", subset=50)
    vqvae2s = families.FAMILIES["vqvae2"]
    names = {b: vqvae2s.checkpoint_name(vqvae2s.configure(data, bottleneck=b))
             for b in ("vq", "continuous", "gaussian")}
    assert names == {"vq": "vqvae2", "continuous": "vqvae2-continuous",
                     "gaussian": "vqvae2-gaussian"}
    assert vqvae2s.checkpoint_name(vqvae2s.configure(data, bottleneck="gaussian", beta=4)) \
        == "vqvae2-gaussian-beta4"
    assert families.alias(vqvae2s, data) == "vqvae2-digits"
    for variant in ("continuous", "gaussian"):  # variants: no stable name for chapter 5
        with pytest.raises(ParameterError, match="variant"):
            families.alias(vqvae2s, data, bottleneck=variant)


def test_a_continuous_model_trains_through_the_cache_without_codebook_monitoring(tmp_path):
    data = load_data("digits", subset=120)
    vqvae2s = families.FAMILIES["vqvae2"]
    run = Run.here(0, "cpu", tmp_path)
    config, recipe = vqvae2s.recipe(data, epochs=1, batch_size=32, bottleneck="continuous",
                                    **TINY)
    trained = train(vqvae2s, data, config, recipe, run=run)
    assert trained.status == "trained" and trained.path.name.startswith("vqvae2-continuous-")
    assert "val_mse" in trained.history and "val_usage_top" not in trained.history
    assert not (tmp_path / "vqvae2-digits.pt").exists()  # a variant is stored under no alias
    assert train(vqvae2s, data, config, recipe, run=run).status == "loaded"
