"""Every family's verbs on the devices readers have (CUDA in Colab, the Apple GPU on a Mac),
checked on a machine without either.

torch's ``FakeTensorMode`` gives tensors a device, a shape and a dtype but no data, and refuses
to mix devices as a real GPU does. A second mode refuses float64 off the CPU, as the Apple GPU
(MPS) does. Models are built on the CPU and moved inside the mode with ``model.to(device)``: the
same call a reader makes (modules built inside the mode cannot be moved there).
"""
import copy
from contextlib import contextmanager

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorDeviceMismatchError, FakeTensorMode
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map

from latent_notes.experiments import latent
from latent_notes.models.autoencoder import AEConfig, Autoencoder
from latent_notes.models.common import sample_gaussian, seeded
from latent_notes.models.pixelcnn import PixelCNN, PixelCNNConfig, upsample_codes
from latent_notes.models.quantise import VectorQuantiserEMA
from latent_notes.models.vae import VAE, VAEConfig
from latent_notes.models.vqvae2 import VQVAE2, VQVAE2Config, vqvae2_loss

DEVICES = ["cuda", "mps"]
FAMILIES = ["ae", "vae", "vqvae2"]
# 16 px: code grids of 2x2 (top) and 4x4 (bottom), so that sampling on fake tensors is quick.
TINY_VQ = dict(image_size=16, width=8, res_channels=4, embed_dim=4, codebook_size_top=8,
               codebook_size_bottom=16)


# -- fake devices ---------------------------------------------------------------------------

def _to(tensor, *args, **kwargs):
    """``Tensor.to`` as the aten op it stands for."""
    device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
    device, dtype = device or tensor.device, dtype or tensor.dtype
    if (device, dtype) == (tensor.device, tensor.dtype):
        return tensor
    return torch.ops.aten._to_copy.default(tensor, dtype=dtype, device=device,
                                           non_blocking=non_blocking)


def _relabel(x, source: str, target: str):
    if isinstance(x, torch.Tensor) and x.device.type == source:
        return torch.ops.aten._to_copy.default(x, device=torch.device(target))
    return x


class CudaStandsInForMps(TorchFunctionMode):
    """A torch built without MPS makes fake mps tensors, but a few of its Python bindings
    (``.to``, indexing, ``.contiguous``, ``.copy_``) ask for an MPS device guard and refuse.
    Such a call is run on fake cuda copies instead and its results are labelled mps again;
    devices are still checked (a CPU tensor meets a cuda one). Autograd on fake mps tensors
    aborts the process, so the mps checks run under ``torch.no_grad``."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            return func(*args, **kwargs)
        except RuntimeError as error:
            if "support for mps" not in str(error):
                raise
        if func is torch.Tensor.to:
            return _to(*args, **kwargs)
        cuda_args, cuda_kwargs = tree_map(lambda x: _relabel(x, "mps", "cuda"), (args, kwargs))
        out = func(*cuda_args, **cuda_kwargs)
        name = getattr(func, "__name__", "")
        if name == "__setitem__" or (name.endswith("_") and not name.endswith("__")):
            torch.ops.aten.copy_.default(args[0], cuda_args[0])  # in place: write it back
            return args[0] if out is cuda_args[0] else out
        return tree_map(lambda x: _relabel(x, "cuda", "mps"), out)


class NoFloat64OffTheCpu(TorchDispatchMode):
    """Fail on any float64 tensor made on a device other than the CPU (MPS has no float64)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.device.type != "cpu":
                raise AssertionError(f"{func} made a float64 tensor on {t.device}: the Apple "
                                     "GPU has no float64; compute on the CPU, then move.")
        return out


@contextmanager
def on_fake(grad: bool = False):
    """Fake devices, the float64 guard and (unless ``grad``) no autograd."""
    with FakeTensorMode(allow_non_fake_inputs=True), CudaStandsInForMps(), NoFloat64OffTheCpu():
        with torch.enable_grad() if grad else torch.no_grad():
            yield


# -- tiny models ----------------------------------------------------------------------------

def tiny_priors(config: VQVAE2Config, num_classes: int = 3) -> tuple[PixelCNN, PixelCNN]:
    top = PixelCNN(PixelCNNConfig(codebook_size=config.codebook_size_top,
                                  grid_size=config.top_grid, channels=8, layers=2,
                                  num_classes=num_classes))
    bottom = PixelCNN(PixelCNNConfig(codebook_size=config.codebook_size_bottom,
                                     grid_size=config.bottom_grid, channels=8, layers=2,
                                     num_classes=num_classes,
                                     cond_codebook_size=config.codebook_size_top))
    return top, bottom


def tiny_model(name: str):
    """A small model of each family, on the CPU, in eval mode; VQ-VAE-2 with its priors."""
    torch.manual_seed(0)
    if name == "ae":
        return Autoencoder(AEConfig(latent_size=5, width=4)).eval()
    if name == "vae":
        return VAE(VAEConfig(latent_size=5, width=4, fc_width=16)).eval()
    model = VQVAE2(VQVAE2Config(**TINY_VQ))
    return model.attach_priors(*tiny_priors(model.config)).eval()


# -- the checks themselves are sound --------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_the_fake_devices_refuse_what_a_real_one_would(device):
    model = tiny_model("ae")
    with on_fake():
        model.to(device)
        assert model.encode(torch.rand(2, 1, 28, 28, device=device)).device.type == device
        with pytest.raises(FakeTensorDeviceMismatchError):
            model.encode(torch.rand(2, 1, 28, 28))  # images left on the CPU
        with pytest.raises(AssertionError, match="float64"):
            torch.zeros(2, device=device).double()


# -- the verbs --------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_runs_its_verbs_where_the_model_is(name, device):
    model = tiny_model(name)
    side = model.config.image_size
    with on_fake():
        model.to(device)
        x = torch.rand(3, 1, side, side, device=device)
        codes = model.encode(x)
        if name == "ae":
            model.fit_prior(codes)  # the Gaussian `sample` draws from
        outputs = [codes, model.decode(codes), model.reconstruct(x), model.sample(4, seed=0),
                   model.sample(2, seed=1, labels=torch.tensor([0, 1]))]  # labels on the CPU
        if name == "vqvae2":
            q = model.quantise(x)
            outputs.append(model.decode_code(q.codes_top, q.codes_bottom))
            edited = model.edit_code(q.codes_top[0], q.codes_bottom[0], "top", (1, 1), [0, 5])
            assert edited.device.type == "cpu" and edited.shape == (2, 1, side, side)
    assert [o.device.type for o in outputs] == [device] * len(outputs)
    assert outputs[3].shape == (4, 1, side, side)


@pytest.mark.parametrize("device", DEVICES)
def test_a_prior_samples_where_its_weights_are(device):
    top, bottom = tiny_priors(VQVAE2Config(**TINY_VQ))
    labels = torch.tensor([0, 2])  # on the CPU: the prior moves them
    with on_fake():
        top.to(device)
        bottom.to(device)
        codes_top = top.sample(2, labels)  # no device named
        codes_bottom = bottom.sample(2, labels, cond=upsample_codes(codes_top, 2))
    assert codes_top.device.type == codes_bottom.device.type == device
    assert codes_top.shape == (2, 2, 2) and codes_bottom.shape == (2, 4, 4)


@pytest.mark.parametrize("device", DEVICES)
def test_the_latent_helpers_work_where_the_codes_are(device):
    model = tiny_model("ae")
    with on_fake():
        model.to(device)
        z = model.encode(torch.rand(2, 1, 28, 28, device=device))
        noisy = latent.perturb_codes(z, 0.5, z.std(0), seed=1)
        grid = latent.traverse(model.decode, z[0], [-1.0, 0.0, 1.0], dims=[0, 3], device=device)
        line = latent.interpolate(model.decode, z[0], z[1], steps=3, device=device)
    assert noisy.device.type == device and noisy.shape == z.shape
    assert grid.shape == (2, 3, 1, 28, 28) and line.shape == (3, 1, 28, 28)


# -- the priors move with their VQ-VAE-2 --------------------------------------------------------

def test_priors_move_with_the_vqvae2_but_stay_out_of_its_checkpoint():
    config = VQVAE2Config(**TINY_VQ)
    torch.manual_seed(0)
    model, saved = VQVAE2(config), VQVAE2(config).state_dict()  # another VQ-VAE-2's weights
    keys = list(model.state_dict())
    top, bottom = tiny_priors(config)
    prior_weight = top.embed.weight.clone()
    model.attach_priors(top, bottom, temperature=0.8)
    assert list(model.state_dict()) == keys  # the checkpoint is still the VQ-VAE's own
    model.load_state_dict(saved)  # strict: the priors are not missing
    assert torch.equal(model.to_code_top.weight, saved["to_code_top.weight"])
    assert torch.equal(top.embed.weight, prior_weight)  # untouched by the load
    outer = torch.nn.ModuleDict({"vq": model})  # the same one level down
    assert list(outer.state_dict()) == ["vq." + k for k in keys]
    outer.load_state_dict({"vq." + k: v for k, v in saved.items()})
    model.to(torch.float64)
    assert top.embed.weight.dtype == bottom.head[-1].weight.dtype == torch.float64
    model.to("meta")
    assert top.embed.weight.device.type == bottom.embed.weight.device.type == "meta"


# -- seeding ----------------------------------------------------------------------------------

def test_seeded_restores_the_generator_of_every_device_type(monkeypatch):
    """CPU, every CUDA device and MPS: each reseeded inside the block, restored after it."""
    calls = {}

    def record(key):
        return lambda value: calls.__setitem__(key, value)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: ["cuda:0", "cuda:1"])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", record("cuda restored"))
    monkeypatch.setattr(torch.cuda, "manual_seed_all", record("cuda seed"))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: "mps")
    monkeypatch.setattr(torch.mps, "set_rng_state", record("mps restored"))
    monkeypatch.setattr(torch.mps, "manual_seed", record("mps seed"))
    before = torch.get_rng_state()
    with seeded(3):
        first = torch.rand(4)
    assert torch.equal(torch.get_rng_state(), before)
    assert calls == {"cuda seed": 3, "mps seed": 3, "cuda restored": ["cuda:0", "cuda:1"],
                     "mps restored": "mps"}
    with seeded(3):
        assert torch.equal(torch.rand(4), first)  # same seed, same numbers


# -- the quantiser on a GPU -------------------------------------------------------------------

def test_a_training_step_reads_nothing_back_to_the_host():
    """A fake tensor has no value to read: ``int(t)``, ``t.item()`` or ``if t`` raise. (The
    forward pass only: autograd's engine wants a real GPU for the backward one.)"""
    vq = VectorQuantiserEMA(dim=4, codebook_size=16, restart_threshold=2.0)  # all start dead
    model = VQVAE2(VQVAE2Config(**TINY_VQ))
    with on_fake(grad=True):
        vq.to("cuda")
        out = vq(torch.randn(2, 4, 3, 3, device="cuda"))
        model.to("cuda")
        terms = vqvae2_loss(model, torch.rand(2, 1, 16, 16, device="cuda"), None)
    assert out.codes.shape == (2, 3, 3)
    assert terms["loss"].device.type == model.quantise_bottom.embed.device.type == "cuda"


def test_the_quantiser_stays_in_float32_under_autocast():
    """Codes near 40 apart by ~1: bfloat16 keeps 8 bits, so its distances would tie or flip."""
    torch.manual_seed(0)
    vq = VectorQuantiserEMA(dim=4, codebook_size=16, restart=False)
    vq.embed.copy_(40 + torch.randn(16, 4))
    vq.embed_sum.copy_(vq.embed)
    plain = copy.deepcopy(vq)
    z = 40 + torch.randn(8, 4, 3, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vq(z)
    expected = plain(z)
    assert torch.equal(out.codes, expected.codes)
    for name in ("embed", "embed_sum", "cluster_size"):
        assert torch.equal(getattr(vq, name), getattr(plain, name)), name


# -- the same numbers on the CPU --------------------------------------------------------------

def test_cpu_numbers_are_those_of_before():
    """Seeded draws made on the CPU are unchanged by the device work (values from before it)."""
    drawn = sample_gaussian(torch.tensor([1.0, -1.0]), torch.tensor([[2.0, 0.5], [0.5, 1.0]]), 3)
    before = torch.tensor([[3.1792984, -0.72965366], [-2.08127475, -1.23859882],
                           [-0.53374678, -2.6917038]])
    assert torch.allclose(drawn, before, atol=1e-6)
    codes, spread = torch.arange(6.0).view(3, 2), torch.tensor([0.5, 2.0])
    eps = torch.randn(3, 2, generator=torch.Generator().manual_seed(7))
    assert torch.equal(latent.perturb_codes(codes, 0.3, spread, seed=7),
                       codes + 0.3 * spread * eps)
