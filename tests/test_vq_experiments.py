"""Chapter 4's code traversal: every code at one position, where it acts, what it changes."""
import matplotlib
import pandas as pd
import pytest
import torch
from torch import nn

from latent_notes.checks import ParameterError
from latent_notes.experiments import vq_experiments
from latent_notes.models.vqvae2 import VQVAE2, VQVAE2Config, code_grids

matplotlib.use("Agg")


def tiny_vqvae2():
    torch.manual_seed(0)
    config = VQVAE2Config(width=8, res_channels=4, embed_dim=4, codebook_size_top=8,
                          codebook_size_bottom=16)  # 28 px padded to 32: grids 4x4 and 8x8
    return VQVAE2(config).eval()


class BrightnessJudge(nn.Module):
    """Class 1 for an image whose mean pixel is above 0.4, else class 0."""

    def forward(self, x):
        mean = x.flatten(1).mean(1)
        return torch.stack([0.4 - mean, mean - 0.4], 1) * 100


def test_a_codes_cell_is_its_share_of_the_padded_image_less_the_padding():
    config = tiny_vqvae2().config
    rows, cols = vq_experiments.code_box(config, (0, 0), "bottom")  # 4 px cells, pad 2
    assert (rows.start, rows.stop, cols.start, cols.stop) == (0, 2, 0, 2)
    rows, cols = vq_experiments.code_box(config, (3, 5), "bottom")
    assert (rows.start, rows.stop, cols.start, cols.stop) == (10, 14, 18, 22)
    rows, cols = vq_experiments.code_box(config, (3, 3), "top")  # 8 px cells, the last one
    assert (rows.start, rows.stop, cols.start, cols.stop) == (22, 28, 22, 28)
    with pytest.raises(ParameterError, match="level must be 'top' or 'bottom'"):
        vq_experiments.code_box(config, (0, 0), "middle")


def test_the_inked_positions_are_where_the_image_has_ink():
    config = tiny_vqvae2().config
    image = torch.zeros(1, 28, 28)
    image[0, 14:22, 6:14] = 1.0  # exactly the top cell (2, 1)
    image[0, 0, 0] = 0.5  # a little ink in the top cell (0, 0)
    assert vq_experiments.inked_positions(config, image, "top", 2) == [(2, 1), (0, 0)]
    bottom = vq_experiments.inked_positions(config, image, "bottom", 4)
    assert sorted(bottom) == [(4, 2), (4, 3), (5, 2), (5, 3)]  # the four 4 px cells under it


def test_every_code_decodes_each_code_of_the_level_in_its_place():
    model = tiny_vqvae2()
    codes = code_grids(model, torch.rand(1, 1, 28, 28), torch.zeros(1), "cpu")
    top, bottom = codes.top[0], codes.bottom[0]
    row = vq_experiments.every_code(model, top, bottom, "bottom", (2, 3))
    assert row.shape == (16, 1, 28, 28)
    assert torch.allclose(row[5], model.edit_code(top, bottom, "bottom", (2, 3), [5])[0],
                          atol=1e-5)  # a batch of 16 against a batch of 1
    original = int(bottom[2, 3])
    assert torch.allclose(row[original], vq_experiments.decoded(model, top, bottom), atol=1e-5)
    assert vq_experiments.every_code(model, top, bottom, "top", (0, 0)).shape[0] == 8


def test_the_effects_read_locality_and_class_changes_against_the_reference():
    reference = torch.zeros(1, 28, 28)
    box = (slice(0, 14), slice(0, 28))  # the upper half of the image
    row = torch.zeros(4, 1, 28, 28)
    row[1, :, :14] = 0.6  # two images change only inside the box
    row[2, :, :14] = 1.0  # (this one turns bright enough for the judge: class 1)
    row[3, :, 20, 20] = 1.0  # one changes a pixel outside it
    effects = vq_experiments.traversal_effects(row, reference, box, BrightnessJudge())
    assert effects["area"] == pytest.approx(0.5)
    inside = 14 * 28 * (0.6 + 1.0)
    assert effects["share_inside"] == pytest.approx(inside / (inside + 1.0))
    assert effects["mean_change"] == pytest.approx((inside + 1.0) / (4 * 28 * 28))
    assert effects["class_changed"] == pytest.approx(0.25)  # only row 2 reads as class 1
    assert effects["classes_reached"] == 2
    assert "class_changed" not in vq_experiments.traversal_effects(row, reference, box)


def test_the_traversal_measures_each_image_level_and_position():
    model = tiny_vqvae2()
    images = torch.rand(3, 1, 28, 28)
    codes = code_grids(model, images, torch.zeros(3), "cpu")
    table = vq_experiments.code_traversal(model, images, codes, [0, 2], 2, "cpu",
                                          judge=BrightnessJudge())
    assert len(table) == 2 * 2 * 2  # images x levels x positions
    assert set(table["image"]) == {0, 2} and set(table["level"]) == {"top", "bottom"}
    assert ((table["share_inside"] >= 0) & (table["share_inside"] <= 1)).all()
    area = table.groupby("level")["area"]
    assert area.min()["top"] > area.max()["bottom"]  # a top cell covers four bottom cells


def summary(top_changed, bottom_changed, top_inside=0.5, bottom_inside=0.6):
    return pd.DataFrame({"share_inside": [top_inside, bottom_inside], "area": [0.08, 0.02],
                         "class_changed": [top_changed, bottom_changed],
                         "mean_change": [0.002, 0.0125]}, index=["top", "bottom"])


@pytest.mark.parametrize("top,bottom,says", [
    (0.4, 0.05, "A top code can change which digit"),
    (0.12, 0.1, "only partly split"),
    (0.05, 0.2, "have not split shape from detail"),
    (0.0, 0.005, "No single code, top or bottom, makes the judge read another class"),
])
def test_the_traversal_sentence_follows_the_numbers(top, bottom, says):
    text = vq_experiments.traversal_sentence(summary(top, bottom), {"top": 8, "bottom": 4})
    assert says in text
    assert f"another class for {top:.0%}" in text and f"another class for {bottom:.0%}" in text
    assert "50% of the change it makes falls inside its 8×8-pixel cell (8% of the image)" in text
    assert "6 (top) and 30 (bottom) times as dense" in text
    assert "a top code moves each pixel by 0.0020 and a bottom code by 0.0125" in text
    spread = summary(top, bottom, top_inside=0.1)  # 0.1 / 0.08: about even, not local
    assert "times as dense" not in vq_experiments.traversal_sentence(
        spread, {"top": 8, "bottom": 4})
    no_judge = summary(top, bottom).drop(columns="class_changed")
    assert "class" not in vq_experiments.traversal_sentence(no_judge, {"top": 8, "bottom": 4})


def test_the_figures_have_a_panel_per_traversal_and_mark_what_they_say():
    model = tiny_vqvae2()
    codes = code_grids(model, torch.rand(1, 1, 28, 28), torch.zeros(1), "cpu")
    top, bottom = codes.top[0], codes.bottom[0]
    rows = {"top (1, 1)": vq_experiments.every_code(model, top, bottom, "top", (1, 1)),
            "bottom (2, 2)": vq_experiments.every_code(model, top, bottom, "bottom", (2, 2))}
    fig = vq_experiments.traversal_figure(rows, 8, "t", originals={"top (1, 1)": 3})
    assert len(fig.axes) == 2 and fig._suptitle.get_text() == "t"
    assert len(fig.axes[0].patches) == 1 and len(fig.axes[1].patches) == 0  # the red frame
    boxes = {"top (1, 1)": vq_experiments.code_box(model.config, (1, 1), "top"),
             "bottom (2, 2)": vq_experiments.code_box(model.config, (2, 2), "bottom")}
    maps = vq_experiments.change_maps(rows, vq_experiments.decoded(model, top, bottom), boxes,
                                      "where")
    panels = [ax for ax in maps.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == list(rows)
    assert all(len(ax.patches) == 1 for ax in panels)  # each cell outlined
