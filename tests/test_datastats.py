import numpy as np
import pytest
import torch
from PIL import Image

from bgremove_utils.course.viz import plot_alpha_stats, show_cutout
from bgremove_utils.data.dataset import PairedImageDataset
from bgremove_utils.data.pairs import find_pairs
from bgremove_utils.data.sample import make_sample
from bgremove_utils.data.stats import alpha_stats, image_stats, read_alpha
from bgremove_utils.evaluation.metrics import per_image_scores
from bgremove_utils.models import GModel


@pytest.fixture(scope="module")
def small_pairs(tmp_path_factory):
    root = make_sample(tmp_path_factory.mktemp("small"), n_pairs=12, size=32)
    pairs, _ = find_pairs(root)
    return pairs


def test_image_stats_counts_sizes_types_and_modes(small_pairs):
    photos = image_stats([p for p, _ in small_pairs])
    cutouts = image_stats([c for _, c in small_pairs])
    assert photos["size"] == {"32x32": 12} and cutouts["size"] == {"32x32": 12}
    assert sum(photos["type"].values()) == 12 and set(photos["type"]) <= {".png", ".jpg"}
    assert cutouts["mode"] == {"RGBA": 12} and cutouts["type"] == {".png": 12}


def test_read_alpha_takes_the_alpha_channel_or_estimates_it_from_a_plain_background(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:6, 2:6] = (200, 10, 10, 255)
    rgba[1, 1, 3] = 100
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    assert read_alpha(tmp_path / "cut.png")[1, 1] == 100
    rgb = np.full((8, 8, 3), 255, np.uint8)
    rgb[2:6, 2:6] = (200, 10, 10)
    Image.fromarray(rgb, "RGB").save(tmp_path / "plain.png")
    alpha = read_alpha(tmp_path / "plain.png")
    assert alpha[0, 0] == 0 and alpha[3, 3] == 255


def test_alpha_stats_histogram_foreground_and_soft_fraction(tmp_path):
    alpha = np.zeros((10, 10), np.uint8)
    alpha[:5] = 255  # half the picture is object
    alpha[5, :] = 128  # one row of soft edge: 10 % of the pixels
    rgba = np.dstack([np.zeros((10, 10, 3), np.uint8), alpha])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    stats = alpha_stats([tmp_path / "a.png"])
    assert stats.histogram.sum() == 100 and stats.histogram[255] == 50 and stats.histogram[128] == 10
    assert stats.foreground[0] == pytest.approx(0.6) and stats.soft[0] == pytest.approx(0.1)
    assert "10.0% soft" in stats.summary()


def test_alpha_stats_draws_at_most_max_images_and_plots(small_pairs):
    stats = alpha_stats([c for _, c in small_pairs], max_images=5)
    assert len(stats.soft) == 5 and stats.histogram.sum() == 5 * 32 * 32
    assert ((stats.soft > 0) & (stats.soft < 1)).all()  # the sample's mattes have soft edges
    fig = plot_alpha_stats(stats)
    assert len(fig.axes) == 3


def test_per_image_scores_rank_the_worst_images_first(small_pairs):
    dataset = PairedImageDataset(small_pairs, image_size=32)
    baseline = per_image_scores(dataset)
    assert baseline.iou.shape == baseline.mae.shape == (12,)
    worst = baseline.worst(3)
    assert list(baseline.iou[worst]) == sorted(baseline.iou)[:3]
    torch.manual_seed(0)
    model = per_image_scores(dataset, GModel(base_channels=8, depth=3, max_channels=32), batch_size=5)
    assert ((model.mae >= 0) & (model.mae <= 1)).all()


def test_show_cutout_draws_colours_matte_checkerboard_and_new_background(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[4:12, 4:12] = (255, 0, 0, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    fig = show_cutout(tmp_path / "cut.png", background=(0.0, 0.0, 1.0))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["colours (RGB)", "alpha matte", "over a checkerboard", "over a new colour"]
    pasted = fig.axes[3].get_images()[0].get_array()
    assert tuple(pasted[0, 0]) == (0.0, 0.0, 1.0) and tuple(pasted[8, 8]) == (1.0, 0.0, 0.0)
