"""Chapter 4's mechanism figures measure what they show: the plain masked stack has a blind spot
and the gated two-stack design has none; the quantiser's gradient passes straight through and
one EMA step moves each used code towards the mean of the vectors it won."""
import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from latent_notes.experiments import mechanisms  # noqa: E402


@pytest.mark.parametrize("grid, layers", [(7, 5), (9, 6)])
def test_plain_stack_has_a_blind_spot_and_the_gated_one_has_none(grid, layers):
    fields = mechanisms.receptive_fields(grid=grid, layers=layers)
    plain, gated = mechanisms.blind_spots(fields).values()
    assert plain > 0 and gated == 0
    i, j = fields["position"]
    order = torch.arange(grid * grid).view(grid, grid)
    for m in fields["maps"].values():  # both are causal: nothing at or after the output
        assert m[order >= i * grid + j].abs().max() == 0
    # deep enough to reach every row above, the plain stack still misses the triangle up and
    # to the right: d rows up, the columns beyond j + d
    plain_map = fields["maps"]["plain masked convolutions"]
    for d in range(1, i + 1):
        assert (plain_map[i - d, j + d + 1:] == 0).all()
        assert (plain_map[i - d, :min(j + d + 1, grid)] > 0).all()
    plt.close(mechanisms.receptive_field_figure(fields))


def test_plain_masks_are_a_then_b():
    a, b = mechanisms.plain_mask(3, False), mechanisms.plain_mask(3, True)
    assert a[1, 1] == 0 and b[1, 1] == 1
    assert a.sum() == 4 and b.sum() == 5
    plt.close(mechanisms.masks_figure(5))


def test_quantiser_demo_snaps_to_the_nearest_code_and_passes_the_gradient_through():
    demo = mechanisms.quantiser_demo(codes=5, points=40)
    assert demo["straight_through"]
    nearest = torch.cdist(demo["z"], demo["before"]).argmin(1)
    assert torch.equal(nearest, demo["codes"])
    for k in range(len(demo["before"])):
        won = demo["z"][demo["codes"] == k]
        if len(won):  # one EMA step moves a used code towards the mean of what it won
            mean = won.mean(0)
            assert (demo["after"][k] - mean).norm() < (demo["before"][k] - mean).norm()
    plt.close(mechanisms.quantiser_figure(demo))
