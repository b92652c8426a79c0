import math

import pytest
import torch

from bgremove_utils.models import DModel, GModel, count_parameters, patch_window, receptive_field, trace_shapes
from bgremove_utils.training.losses import (
    EDGE_WEIGHT,
    adversarial_loss,
    discriminator_loss,
    edge_band,
    generator_loss,
    reconstruction_losses,
)


@pytest.mark.parametrize(("size", "depth"), [(32, 3), (64, 4), (96, 5), (128, 4), (256, 6)])
def test_generator_returns_rgba_in_unit_range_at_several_sizes_and_depths(size, depth):
    torch.manual_seed(0)
    g = GModel(base_channels=8, depth=depth).eval()
    photos = torch.rand(2, 3, size, size)
    out = g(photos)
    assert out.shape == (2, 4, size, size)  # RGB and alpha, not RGB alone
    assert 0 <= out.min() and out.max() <= 1
    logits = g.logits(photos)
    assert (logits[0, 3] - logits[1, 3]).abs().mean() > 1e-3  # the matte depends on the photo...
    assert logits[0, 3].std() > 1e-3  # ...and on where in it: not one value everywhere
    assert logits[:, :3].std() > 0.5  # colour logits carry the photo's own colours


def test_generator_rejects_a_size_its_depth_cannot_halve():
    with pytest.raises(ValueError, match="divisible by 16"):
        GModel(base_channels=8, depth=4)(torch.rand(1, 3, 40, 40))


def test_generator_alpha_is_the_sigmoid_of_its_logits():
    g = GModel(base_channels=8, depth=3).eval()
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(g(x), torch.sigmoid(g.logits(x)))


def test_predict_averages_a_picture_and_its_mirror_image_and_keeps_the_mode():
    torch.manual_seed(0)
    g = GModel(base_channels=8, depth=3).train()
    x = torch.rand(2, 3, 32, 32)
    plain = g.predict(x, mirror=False)
    assert g.training  # the mode it was in is restored
    mirrored = g.predict(x.flip(3), mirror=False).flip(3)
    assert (plain - mirrored).abs().max() > 1e-3  # an untrained G answers a mirrored picture otherwise
    torch.testing.assert_close(g.predict(x), (plain + mirrored) / 2)
    torch.testing.assert_close(g.predict(x.flip(3)).flip(3), g.predict(x))  # the same answer for either


@pytest.mark.parametrize("size", [32, 64, 96, 256])
def test_discriminator_gives_a_patch_map_of_logits_at_any_size(size):
    d = DModel(d_channels=8, d_down=3)
    logits = d(torch.rand(3, 3, size, size), torch.rand(3, 3, size, size))
    assert logits.shape == (3, 1, size // 8, size // 8)
    # logits, not probabilities: BCEWithLogits must not see a second sigmoid
    with torch.no_grad():
        d.net[-1].weight.mul_(100)
    wide = d(torch.rand(3, 3, size, size), torch.rand(3, 3, size, size))
    assert wide.min() < 0 and wide.max() > 1


def test_losses_accept_a_short_last_batch_and_add_up_as_written():
    d_real, d_fake = torch.zeros(3, 1, 4, 4), torch.zeros(3, 1, 4, 4)  # 3 items, not a full batch; D at chance
    assert discriminator_loss(d_real, d_fake).item() == pytest.approx(math.log(2))
    logits, target = torch.randn(3, 4, 32, 32), torch.rand(3, 4, 32, 32)
    total, parts = generator_loss(d_fake, logits, target, rec_weight=10.0, adv_weight=2.0)
    assert list(parts) == ["g_adv", "alpha_l1", "alpha_bce", "colour_l1", "alpha_iou"]
    assert parts["g_adv"].item() == pytest.approx(math.log(2))
    rec = sum(reconstruction_losses(logits, target).values())
    assert total.item() == pytest.approx(2.0 * math.log(2) + 10.0 * rec.item(), rel=1e-6)


def test_soft_iou_term_counts_a_missed_small_object_as_much_as_a_large_one():
    target = torch.zeros(2, 4, 32, 32)
    target[0, 3, 14:18, 14:18] = 1  # a 4x4 object
    target[1, 3, 4:28, 4:28] = 1  # a 24x24 object
    perfect = torch.where(target > 0.5, 20.0, -20.0)
    assert reconstruction_losses(perfect, target)["alpha_iou"] < 1e-3
    missed_small = perfect.clone()
    missed_small[0, 3] = -20.0  # nothing found in the first picture
    terms = reconstruction_losses(missed_small, target)
    assert terms["alpha_l1"] < 0.01  # 16 wrong pixels of 2048: per pixel terms barely notice
    assert terms["alpha_iou"] == pytest.approx(0.5, abs=1e-3)  # one picture of two entirely wrong


def test_edge_band_is_the_two_pixel_ring_around_the_outline_and_not_the_pictures_border():
    alpha = torch.zeros(1, 1, 16, 16)
    alpha[..., 5:11, 5:11] = 1  # a 6x6 square
    band = edge_band(alpha)
    assert band.sum() == 8 * 8 - 4 * 4  # one pixel outside the outline and one inside, all round
    assert band[0, 0, 4, 4] == band[0, 0, 5, 5] == 1 and band[0, 0, 7, 7] == band[0, 0, 0, 0] == 0
    assert edge_band(torch.ones(1, 1, 16, 16)).sum() == 0  # an object filling the picture has no outline


def test_alpha_bce_counts_an_error_on_the_outline_more_than_the_same_error_inside():
    target = torch.zeros(1, 4, 32, 32)
    target[0, 3, 8:24, 8:24] = 1
    perfect = torch.where(target > 0.5, 20.0, -20.0)
    on_edge, inside = perfect.clone(), perfect.clone()
    on_edge[0, 3, 8, 15] = -20.0  # one outline pixel called background
    inside[0, 3, 15, 15] = -20.0  # one pixel deep inside called background
    bce_edge = reconstruction_losses(on_edge, target)["alpha_bce"]
    bce_inside = reconstruction_losses(inside, target)["alpha_bce"]
    assert bce_edge.item() == pytest.approx((1 + EDGE_WEIGHT) * bce_inside.item(), rel=0.01)


def test_discriminator_loss_gives_generator_gradient_when_discriminator_is_sure():
    # With a sigmoid inside D fed to BCEWithLogits, a confident D would starve G of gradient.
    fake_logits = torch.full((2, 1, 4, 4), -8.0, requires_grad=True)
    loss, _ = generator_loss(fake_logits, torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 8, 8), rec_weight=0.0)
    loss.backward()
    assert fake_logits.grad.abs().mean() > 1e-3


def test_depth_and_width_change_the_size_of_the_generator():
    small, wide, deep = (
        GModel(base_channels=8, depth=3),
        GModel(base_channels=16, depth=3),
        GModel(base_channels=8, depth=5),
    )
    assert count_parameters(small) < count_parameters(wide)
    assert count_parameters(small) < count_parameters(deep)


def test_trace_shapes_lists_each_part_of_the_unet_in_order():
    shapes = trace_shapes(GModel(base_channels=8, depth=3, max_channels=32), torch.rand(2, 3, 32, 32))
    names = [name for name, _, _ in shapes]
    assert names == ["stem", "downs.0", "downs.1", "downs.2", "ups.0", "ups.1", "ups.2", "refine", "head"]
    assert shapes[3] == ("downs.2", "Down", (2, 32, 4, 4)) and shapes[-1] == ("head", "Conv2d", (2, 4, 32, 32))
    assert shapes[4] == ("ups.0", "Up", (2, 32, 8, 8))  # 32 upsampled + the 32 of the skip, merged into 32
    d_shapes = trace_shapes(DModel(d_channels=8, d_down=3), torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    assert [t for _, t, _ in d_shapes] == ["Down", "ResBlock", "Down", "ResBlock", "Down", "ResBlock", "Conv2d"]
    assert d_shapes[-1] == ("net.6", "Conv2d", (2, 1, 4, 4))


def test_receptive_field_of_the_discriminator_grows_with_each_block():
    # one block: a 4x4 conv (4 px), two 3x3 convs at stride 2 (+4 +4), the 3x3 head at stride 2 (+4)
    assert receptive_field(DModel(d_down=1)) == 16
    assert receptive_field(DModel(d_down=3)) == 94  # wider than a 64-pixel picture, but placed differently per patch
    assert receptive_field(torch.nn.Conv2d(3, 3, 5, dilation=2)) == 9


def test_spectral_normalisation_bounds_each_convolution_of_the_discriminator():
    d = DModel(d_channels=8, d_down=2, d_spectral_norm=True)
    for _ in range(20):  # power iterations, one per forward pass in training mode
        d(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [torch.linalg.matrix_norm(conv.weight.flatten(1), 2).item() for conv in convs]
    assert len(convs) == 7 and max(norms) == pytest.approx(1.0, abs=0.05)


def test_bce_losses_read_log_2_at_chance_and_fall_as_d_grows_sure():
    chance = torch.zeros(2, 1, 4, 4)
    assert discriminator_loss(chance, chance).item() == pytest.approx(math.log(2))
    assert adversarial_loss(chance).item() == pytest.approx(math.log(2))
    sure = torch.full((2, 1, 4, 4), 5.0)
    assert discriminator_loss(sure, -sure).item() < 0.01  # real scored real, fake scored fake
    assert adversarial_loss(-sure).item() == pytest.approx(5.0, abs=0.01)  # G fooled nobody: a large loss


def test_patch_window_is_where_the_gradient_of_one_output_reaches_the_input():
    """Without instance norm (whose statistics see the whole picture), an output depends on the
    input pixels of its window only: the gradient of one output is nonzero exactly there."""
    torch.manual_seed(0)
    stack = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 4, stride=2, padding=1),
        torch.nn.Conv2d(2, 2, 3, padding=1),
        torch.nn.Conv2d(2, 1, 4, stride=2, padding=1),
    )
    for index in (0, 3):
        x = torch.randn(1, 1, 32, 32, requires_grad=True)
        stack(x)[0, 0, index, index].backward()
        seen = x.grad[0, 0, index * 4 + 8].nonzero().flatten()  # a row inside the window
        first, last = patch_window(stack, index)
        assert (seen.min().item(), seen.max().item()) == (max(first, 0), min(last, 31))


def test_only_the_central_verdicts_of_the_discriminator_see_the_whole_64_pixel_picture():
    d = DModel(d_down=3)  # 8 x 8 verdicts at 64 px
    assert patch_window(d, 0) == (-43, 50)  # a corner verdict: pixels 51-63 are outside its window
    whole = [i for i in range(8) if patch_window(d, i)[0] <= 0 and patch_window(d, i)[1] >= 63]
    assert whole == [2, 3, 4, 5]  # along each axis: the central 4 x 4 of the 8 x 8 map
