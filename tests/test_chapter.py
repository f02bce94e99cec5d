"""A chapter's bookkeeping in the package: its parameters check themselves, and one call
records a measured number in the results table and glues it for the text."""
import re

import pytest

from latent_notes.book import notebook
from latent_notes.book.notebook import Chapter
from latent_notes.book.parameters import (
    AutoencoderParameters,
    ComparisonParameters,
    VAEParameters,
    VQVAE2Parameters,
    WarmupParameters,
)
from latent_notes.book.results import Results, read_results
from latent_notes.checks import ParameterError

# the quick values of each chapter's parameters cell
GOOD = {
    AutoencoderParameters: dict(latent_sizes=[2, 8, 16, 32], traversal_latent=16,
                                noise_latent=None, traversal_units="std", traversal_range=1.0,
                                traversal_step=0.25, noise_scales=[0.0, 0.1, 1.0]),
    VAEParameters: dict(latent_size=16, betas=[0.5, 1, 4], noise_levels=[0.1, 0.3, 0.5],
                        is_samples=100, eval_images=None, latent_sizes=[4, 16, 64],
                        size_epochs=None),
    VQVAE2Parameters: dict(samples_per_class=8, judged_per_class=20),
    ComparisonParameters: dict(fid_draws=5, labels_per_class=[1, 10, 100, 1000, None],
                               spread_at=[10]),
    WarmupParameters: {},
}
BAD = [  # (dataclass, field, a value it refuses)
    (AutoencoderParameters, "latent_sizes", []),
    (AutoencoderParameters, "latent_sizes", [2, 0]),
    (AutoencoderParameters, "traversal_latent", 5),
    (AutoencoderParameters, "noise_latent", 64),
    (AutoencoderParameters, "traversal_units", "pixels"),
    (AutoencoderParameters, "traversal_range", 0),
    (AutoencoderParameters, "traversal_step", -0.25),
    (AutoencoderParameters, "noise_scales", [0.5, -1]),
    (AutoencoderParameters, "noise_scales", []),
    (VAEParameters, "latent_size", 1),
    (VAEParameters, "latent_size", 0),
    (VAEParameters, "betas", []),
    (VAEParameters, "betas", [1, -0.5]),
    (VAEParameters, "betas", ["1"]),
    (VAEParameters, "noise_levels", [0.0]),
    (VAEParameters, "noise_levels", [0.3, 1.5]),
    (VAEParameters, "is_samples", 0),
    (VAEParameters, "latent_sizes", [4, 1.5]),
    (VAEParameters, "eval_images", -5),
    (VAEParameters, "size_epochs", 0),
    (VQVAE2Parameters, "samples_per_class", 0),
    (VQVAE2Parameters, "judged_per_class", 2.5),
    (ComparisonParameters, "fid_draws", 1),
    (ComparisonParameters, "labels_per_class", []),
    (ComparisonParameters, "labels_per_class", [10, 0]),
    (ComparisonParameters, "spread_at", [None]),
    (ComparisonParameters, "spread_at", [5]),
]


@pytest.mark.parametrize("parameters", list(GOOD))
def test_the_quick_values_pass_and_are_taken_from_the_chapters_namespace(parameters):
    namespace = {**GOOD[parameters], "dataset": "digits", "unrelated": object()}
    assert parameters.of(namespace) == parameters(**GOOD[parameters])


@pytest.mark.parametrize("parameters, name, value", BAD)
def test_a_bad_value_names_its_field_what_was_wrong_and_the_fix(parameters, name, value):
    with pytest.raises(ParameterError, match=rf"^{name}\b") as error:
        parameters(**{**GOOD[parameters], name: value})
    message = str(error.value)
    assert repr(value) in message or str(value) in message, message  # what was wrong
    assert f"Change {name} in the parameters cell of book/{parameters.CHAPTER}.py" in message
    assert f"-p {parameters.CHAPTER[:2]}.{name}=" in message


def test_every_field_has_a_bad_value_above():
    for parameters, values in GOOD.items():
        assert {name for cls, name, _ in BAD if cls is parameters} == set(values)


def test_a_missing_parameter_is_named():
    with pytest.raises(ParameterError, match="judged_per_class.*book/04_vqvae2.py"):
        VQVAE2Parameters.of({"samples_per_class": 8})


def test_the_autoencoders_sweep_is_sorted_and_the_noise_model_defaults_to_the_largest():
    checked = AutoencoderParameters(**{**GOOD[AutoencoderParameters],
                                       "latent_sizes": [32, 2, 16, 2, 8]})
    assert checked.latent_sizes == [2, 8, 16, 32] and checked.noise_latent == 32


def test_each_chapters_own_parameters_cell_passes_its_checks():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for parameters in GOOD:
        source = (root / "book" / f"{parameters.CHAPTER}.py").read_text()
        cell = re.split(r'# %% tags=\["parameters"[^\]]*\]', source, maxsplit=1)[1]
        cell = cell.split("# %%", 1)[0]
        assigned = {node.targets[0].id: ast.literal_eval(node.value)
                    for node in ast.parse(cell).body if isinstance(node, ast.Assign)}
        parameters.of(assigned)


@pytest.fixture
def glued(monkeypatch):
    """What the chapter glued, {name: value}, with myst-nb's glue replaced by a recorder."""
    import myst_nb

    found = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: found.update(
        {name: value}))
    return found


def chapter_in(tmp_path, label=None):
    return Chapter("05_x", data=None, results=Results("05_x", "digits", tmp_path, label=label),
                   run=None)


def test_record_writes_the_row_glues_the_number_and_returns_it(tmp_path, glued):
    chapter = chapter_in(tmp_path)
    assert chapter.record("ae", "test_mse", 0.0123, setting="latent=16", glue="ae_mse") == 0.0123
    assert chapter.record("ae", "psnr", 19.1) == 19.1  # no glue name: recorded only
    assert glued == {"ae_mse": 0.0123}
    table = read_results(tmp_path / "05_x.csv")
    assert table[["model", "setting", "metric", "value"]].values.tolist() == [
        ["ae", "latent=16", "test_mse", 0.0123], ["ae", "", "psnr", 19.1]]


def test_record_all_records_every_metric_and_glues_them_by_a_template(tmp_path, glued):
    chapter = chapter_in(tmp_path, label="comparison")
    scores = chapter.record_all("vae", {"test_mse": 0.02, "psnr": 17.0}, glue="{metric}_{model}")
    assert scores == {"test_mse": 0.02, "psnr": 17.0}
    assert glued == {"test_mse_vae": 0.02, "psnr_vae": 17.0}
    chapter.record_all("vqvae2", {"codebook_usage_top": 0.9}, setting="no_restart")
    table = read_results(tmp_path / "05_x.csv")
    assert set(table.chapter) == {"comparison"} and len(table) == 3
    assert table.set_index("metric").loc["codebook_usage_top", "setting"] == "no_restart"
    assert set(glued) == {"test_mse_vae", "psnr_vae"}


def test_glue_turns_numpy_and_torch_scalars_into_python_numbers(glued):
    import numpy as np
    import torch

    assert notebook.glue("a", np.float32(0.5)) is None  # a last line shows nothing
    notebook.glue("b", torch.tensor(3))
    assert glued == {"a": 0.5, "b": 3} and type(glued["b"]) is int
