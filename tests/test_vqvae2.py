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
