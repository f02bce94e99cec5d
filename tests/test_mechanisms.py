"""Chapter 4's mechanism figures measure what they show: the plain masked stack has a blind spot
(holes inside its field) and the gated two-stack design has none, though both leave positions
beyond the reach of a finite stack; the quantiser's gradient passes straight through and one EMA
step moves each used code towards the mean of the vectors it won."""
import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from latent_notes.experiments import mechanisms  # noqa: E402
from latent_notes.models.pixelcnn import PixelCNNConfig  # noqa: E402

PLAIN, GATED = mechanisms.PLAIN, mechanisms.GATED


def counts(grid, layers, **options):
    return mechanisms.field_counts(mechanisms.receptive_fields(grid=grid, layers=layers,
                                                                **options))


@pytest.mark.parametrize("grid, layers", [(7, 5), (9, 6), (15, 6)])
def test_plain_stack_has_a_blind_spot_and_the_gated_one_has_none(grid, layers):
    fields = mechanisms.receptive_fields(grid=grid, layers=layers)
    found = mechanisms.field_counts(fields)
    assert found[PLAIN]["blind"] > 0 and found[GATED]["blind"] == 0
    i, j = fields["position"]
    order = torch.arange(grid * grid).view(grid, grid)
    for c in found.values():  # every earlier position is seen, a hole or beyond the field
        assert c["seen"] + c["blind"] + c["beyond"] == c["earlier"] == i * grid + j
    for m in fields["maps"].values():  # both are causal: nothing at or after the output
        assert m[order >= i * grid + j].abs().max() == 0
    # the plain stack misses the triangle up and to the right: d rows up, the columns beyond
    # j + d, inside its field (d < layers); what it sees of those rows starts at j - layers
    plain_map = fields["maps"][PLAIN]
    kinds = mechanisms.field_kinds(plain_map, (i, j))
    for d in range(1, min(i, layers) + 1):
        assert (plain_map[i - d, j + d + 1:] == 0).all()
        assert (plain_map[i - d, max(j - layers, 0):min(j + d + 1, grid)] > 0).all()
        if d < layers:  # below the top row of the field: the hole
            assert (kinds[i - d, j + d + 1:min(j + layers + 1, grid)] == mechanisms.BLIND).all()
    plt.close(mechanisms.receptive_field_figure(fields))


@pytest.mark.parametrize("grid, layers, position", [
    (5, 1, (2, 2)), (7, 2, (4, 3)), (9, 3, (8, 8)), (9, 3, (6, 0)), (8, 5, (7, 7)),
    (15, 6, (8, 7)), (12, 4, (11, 1))])
def test_the_gated_field_is_a_filled_block_that_grows_a_row_and_a_column_per_layer(
        grid, layers, position):
    """L layers see the L + 1 rows above and the L columns either side, and L positions to the
    left in the output's row: no hole, but nothing farther."""
    fields = mechanisms.receptive_fields(grid=grid, layers=layers, position=position)
    seen = fields["maps"][GATED] != 0
    i, j = position
    expected = torch.zeros(grid, grid, dtype=torch.bool)
    expected[max(i - layers - 1, 0):i, max(j - layers, 0):j + layers + 1] = True
    expected[i, max(j - layers, 0):j] = True
    assert torch.equal(seen, expected)
    found = mechanisms.field_counts(fields)[GATED]
    assert found["blind"] == 0 and found["seen"] == int(expected.sum())


def test_six_gated_layers_on_a_15_grid_leave_30_positions_beyond_the_field():
    found = counts(15, 6)
    assert found[GATED] == {"earlier": 127, "seen": 97, "blind": 0, "beyond": 30}
    assert found[PLAIN]["blind"] == 15 and found[PLAIN]["beyond"] == 43


def test_beyond_the_field_shrinks_with_layers_and_grows_with_the_grid():
    by_layers = [counts(15, layers) for layers in range(1, 9)]
    beyond = [c[GATED]["beyond"] for c in by_layers]
    assert all(a > b for a, b in zip(beyond, beyond[1:], strict=False) if a), beyond
    assert beyond[-1] == 0  # 8 layers from the middle of 15 reach the whole grid
    assert all(c[GATED]["blind"] == 0 for c in by_layers)
    # the plain stack's hole does not shrink with depth: it grows until it meets the grid's edge
    holes = [c[PLAIN]["blind"] for c in by_layers]
    assert all(a <= b for a, b in zip(holes, holes[1:], strict=False)) and holes[-1] > 0, holes
    by_grid = [counts(grid, 4)[GATED] for grid in (9, 11, 15, 21)]
    beyond = [c["beyond"] for c in by_grid]
    assert all(a < b for a, b in zip(beyond, beyond[1:], strict=False)), beyond
    assert all(c["blind"] == 0 for c in by_grid)


@pytest.mark.parametrize("grid, layers, beyond", [(4, 5, 0), (8, 5, 22), (8, 7, 0), (8, 2, 52)])
def test_a_configured_priors_last_position_is_measured_with_its_condition(grid, layers, beyond):
    config = PixelCNNConfig(codebook_size=16, grid_size=grid, channels=8, layers=layers,
                            num_classes=3, label_dropout=0.1, cond_codebook_size=5)
    fields = mechanisms.prior_field(config)
    assert fields["position"] == (grid - 1, grid - 1) and fields["layers"] == layers
    (found,) = mechanisms.field_counts(fields).values()
    assert found["earlier"] == grid * grid - 1
    assert found["blind"] == 0 and found["beyond"] == beyond
    plain = PixelCNNConfig(codebook_size=16, grid_size=grid, channels=8, layers=layers)
    assert mechanisms.field_counts(mechanisms.prior_field(plain, "x")) == {"x": found}
    assert mechanisms.prior_reach(config) == {"grid": grid, "layers": layers, **found}
    top = mechanisms.prior_field(PixelCNNConfig(grid_size=4, channels=8, layers=2))
    plt.close(mechanisms.receptive_field_figure(fields, top, title="two priors"))


def test_field_kinds_of_an_empty_field_and_of_the_first_position():
    nothing = torch.zeros(5, 5)
    assert mechanisms.unseen(nothing, (2, 3)) == {"earlier": 13, "seen": 0, "blind": 0,
                                                  "beyond": 13}
    assert mechanisms.unseen(torch.ones(5, 5), (0, 0)) == {"earlier": 0, "seen": 0, "blind": 0,
                                                          "beyond": 0}
    one = torch.zeros(5, 5)
    one[0, 4] = one[2, 0] = 1  # two seen corners: the block between them is a hole
    kinds = mechanisms.field_kinds(one, (2, 2))
    assert kinds[2, 2] == mechanisms.OUTPUT and kinds[3, 0] == mechanisms.LATER
    assert mechanisms.unseen(one, (2, 2)) == {"earlier": 12, "seen": 2, "blind": 10,
                                              "beyond": 0}


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
