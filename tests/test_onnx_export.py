"""Every explorer view exports to ONNX and onnxruntime computes what PyTorch computes."""
import pytest
import torch

onnxruntime = pytest.importorskip("onnxruntime")

from latent_notes.book import onnx_export  # noqa: E402
from latent_notes.models.autoencoder import AEConfig, Autoencoder  # noqa: E402
from latent_notes.models.pixelcnn import PixelCNN, prior_config  # noqa: E402
from latent_notes.models.vae import VAE, VAEConfig  # noqa: E402
from latent_notes.models.vqvae2 import VQVAE2, VQVAE2Config  # noqa: E402


def tiny_models():
    torch.manual_seed(0)
    vq = VQVAE2(VQVAE2Config(width=8, res_channels=4, embed_dim=4, codebook_size_top=6,
                             codebook_size_bottom=7))
    priors = [PixelCNN(prior_config(vq.config, level, channels=8, layers=2, num_classes=3,
                                    label_dropout=0.1)) for level in ("top", "bottom")]
    vq.attach_priors(*priors)
    return {"ae": Autoencoder(AEConfig(latent_size=3, width=4)),
            "vae": VAE(VAEConfig(latent_size=2, width=4, fc_width=8)), "vqvae2": vq}


def test_every_view_exports_with_parity_on_fresh_inputs(tmp_path):
    manifest = onnx_export.export_all(tiny_models(), tmp_path)
    assert set(manifest) == {"ae-decoder.onnx", "ae-encoder.onnx", "vae-decoder.onnx",
                             "vae-encoder.onnx", "vqvae2-decoder.onnx", "vqvae2-flat-decoder.onnx",
                             "vqvae2-encoder.onnx", "prior-top.onnx", "prior-bottom.onnx"}
    assert all(m["parity"] <= 1e-5 for m in manifest.values())
    # parity holds on inputs the export never saw (seeded), not only on its example
    torch.manual_seed(1)
    for family, model in tiny_models().items():
        for view in onnx_export.views_of(family, model):
            fresh = {k: (torch.randint_like(v, 0, 3) if not v.is_floating_point()
                         else torch.randn_like(v).clamp(0, 1) if k == "image"
                         else torch.randn_like(v) * 3) for k, v in view.inputs.items()}
            assert onnx_export.parity(view, tmp_path / f"{view.name}.onnx", fresh) <= 1e-5


def test_an_unknown_family_is_refused():
    with pytest.raises(Exception, match="No explorer views"):
        onnx_export.views_of("gan", torch.nn.Linear(2, 2))


def test_an_exported_file_names_no_file_of_the_building_machine(tmp_path):
    """torch.onnx.export writes each node's stack trace (absolute paths of the package, of
    torch in the virtual environment) into the file the page downloads: none is kept, and the
    stripped file computes what the model computes."""
    import sys
    from pathlib import Path

    import onnx

    model = tiny_models()["vae"]
    view = onnx_export.view_named("vae", model, "vae-decoder")
    path = onnx_export.export_checked(view, tmp_path / "vae-decoder.onnx")
    data = path.read_bytes()
    root = Path(onnx_export.__file__).resolve().parents[2]
    for machine in (str(root), sys.prefix, str(Path.home()), "stack_trace"):
        assert machine.encode() not in data, machine
    nodes = [node for node in onnx.load(str(path)).graph.node]
    assert nodes and not any(node.metadata_props or node.doc_string for node in nodes)
    assert onnx_export.parity(view, path) <= 1e-5
