"""The course's figures: what each panel shows."""

import numpy as np
import torch

from bgremove_utils.course.viz import plot_history, show_failures, show_pairs, show_patch_windows, show_photos


class Fixed(torch.nn.Module):
    """A stand-in generator whose matte is a fixed square, whatever the photo."""

    def __init__(self, alpha: torch.Tensor):
        super().__init__()
        self.alpha = torch.nn.Parameter(alpha, requires_grad=False)

    def predict(self, photo):
        return torch.cat([photo, self.alpha.expand(len(photo), 1, -1, -1)], 1)


def test_failures_show_the_predicted_matte_and_a_leak_in_red_a_missing_part_in_blue():
    true_alpha = torch.zeros(1, 16, 16)
    true_alpha[:, 4:12, 4:12] = 1
    predicted = torch.zeros(1, 16, 16)
    predicted[:, 4:12, 6:14] = 1  # two columns lost on the left, two of background kept on the right
    dataset = [(torch.rand(3, 16, 16), torch.cat([torch.rand(3, 16, 16), true_alpha]))]
    fig = show_failures(dataset, [0], Fixed(predicted[None]), titles=["worst"])
    axes = fig.axes
    assert [ax.get_title() for ax in axes][0] == "worst" and len(axes) == 5
    error = axes[4].images[0].get_array()
    assert error[8, 12] == 1 and error[8, 4] == -1 and error[8, 8] == 0  # red leak, blue missing, right
    np.testing.assert_array_equal(axes[2].images[0].get_array(), predicted[0].numpy())


def test_history_plot_shows_the_game_beside_log_2():
    rows = [
        {
            "epoch": e,
            "loss_d": 0.6,
            "g_adv": 0.8,
            "d_real": 0.6,
            "d_fake": 0.4,
            "alpha_l1": 0.1,
            "val_iou": 0.5,
            "val_mae": 0.1,
        }
        for e in (1, 2)
    ]
    game = next(ax for ax in plot_history(rows).axes if ax.get_title() == "the game: D against G")
    assert {line.get_label() for line in game.lines} >= {"D loss", "D's score, real", "D's score, G's"}
    assert any(np.allclose(line.get_ydata(), np.log(2)) for line in game.lines)


def test_a_chosen_few_are_shown_in_the_order_chosen(tiny_sample):
    from bgremove_utils.data.dataset import PairedImageDataset
    from bgremove_utils.data.pairs import find_pairs

    pairs, _ = find_pairs(tiny_sample)
    dataset = PairedImageDataset(pairs[:3], 32)
    fig = show_pairs(torch.utils.data.Subset(dataset, [2, 0, 1]), n_images=3, seed=0)
    shown = [fig.axes[3 * row].images[0].get_array() for row in range(3)]
    for picture, index in zip(shown, [2, 0, 1]):
        np.testing.assert_allclose(picture, dataset[index][0].permute(1, 2, 0).numpy())


def test_the_real_photos_are_shown_by_name():
    fig = show_photos("new_photos")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["coffee", "motorcycle", "grace_hopper", "gravel", "clock"]


def test_history_plot_sets_the_validation_loss_beside_the_training_reconstruction_loss():
    rows = [
        {
            "epoch": e,
            "loss_d": 0.6,
            "alpha_l1": 0.1 / e,
            "alpha_bce": 0.2 / e,
            "val_loss": 0.4,
            "val_iou": 0.5,
            "val_mae": 0.1,
        }
        for e in (1, 2)
    ]
    fit = plot_history(rows).axes[0]
    lines = {line.get_label(): line.get_ydata() for line in fit.lines}
    np.testing.assert_allclose(lines["training batches"], [0.3, 0.15])
    np.testing.assert_allclose(lines["validation split"], [0.4, 0.4])


def test_patch_windows_are_drawn_where_the_verdicts_see():
    from bgremove_utils.models import DModel

    fig = show_patch_windows(torch.rand(3, 64, 64), DModel(d_down=3), verdicts=[(0, 0), (3, 3)])
    windows = [p for p in fig.axes[0].patches if p.get_label().startswith("verdict")]
    assert [(w.get_x() + 0.5, w.get_width()) for w in windows] == [(-43, 94), (-19, 94)]
