"""Real photos from the dependencies, fresh backgrounds, pasting cut-outs on them, and the
new-photos split made of photos training never sees."""

import numpy as np
import pytest
import torch

from bgremove_utils.data.backgrounds import Backgrounds, blur, paste
from bgremove_utils.data.dataset import PairedImageDataset, new_photos_loader
from bgremove_utils.data.pairs import find_pairs, read_manifest
from bgremove_utils.data.photos import PHOTOS, horse_silhouette, load_photos, real_cutouts
from bgremove_utils.data.sample import make_new_photos, make_sample


def test_every_listed_photo_ships_offline_and_serves_one_split_only():
    train, new = load_photos("train"), load_photos("new_photos")
    assert len(train) + len(new) == len(PHOTOS) and len(new) >= 3
    for photo in train + new:
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3 and min(photo.shape[:2]) >= 128
    seen = {photo.tobytes()[:4096] for photo in train}
    assert not any(photo.tobytes()[:4096] in seen for photo in new)
    assert horse_silhouette().mean() > 0.1 and all(cut.shape[2] == 4 for cut in real_cutouts())


def test_backgrounds_are_fresh_each_time_the_same_for_the_same_seed_and_in_range():
    backgrounds = Backgrounds(load_photos("train"), 32)
    a = backgrounds.draw(6, torch.Generator().manual_seed(0))
    b = backgrounds.draw(6, torch.Generator().manual_seed(0))
    c = backgrounds.draw(6, torch.Generator().manual_seed(1))
    assert a.shape == (6, 3, 32, 32) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.flatten(1).std(1).min() > 0.005  # textured, never one flat colour
    textures_only = Backgrounds([], 32).draw(4, torch.Generator().manual_seed(0))
    assert textures_only.shape == (4, 3, 32, 32)


def test_blur_softens_only_the_pictures_it_is_asked_to():
    x = torch.zeros(2, 3, 32, 32)
    x[..., 16:] = 1  # a sharp vertical edge in both
    out = blur(x, torch.tensor([0, 5]))  # the first sharp, the second blurred
    assert torch.equal(out[0], x[0])
    assert 0.05 < out[1, 0, 10, 15] < 0.5 < out[1, 0, 10, 16] < 0.95


def test_a_cutout_pasted_on_a_background_keeps_its_colour_where_it_is_opaque():
    cutout = torch.zeros(1, 4, 32, 32)
    cutout[:, :3] = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1)
    cutout[:, 3, 8:24, 8:24] = 1
    background = torch.full((1, 3, 32, 32), 0.5)
    photo = paste(cutout, background, torch.Generator().manual_seed(0))
    assert (photo[0, :, 12:20, 12:20] - cutout[0, :3, 12:20, 12:20]).abs().max() < 0.05
    assert (photo[0, :, :4, :4] - 0.5).abs().max() < 0.05  # the background, far from the object and its shadow


def test_backgrounds_drawn_on_a_gpu_never_read_a_value_back():
    # On a GPU the training step's backgrounds are drawn where the step runs; a count read back (how many
    # photo crops, which blur) would make the GPU wait for the CPU. The "meta" device stands in: it holds
    # no values, so any reading fails.
    for photos in (load_photos("train"), []):
        backgrounds = Backgrounds(photos, 32).to("meta")
        drawn = backgrounds.draw(5)
        assert drawn.device.type == "meta" and drawn.shape == (5, 3, 32, 32)
    with pytest.raises(RuntimeError):
        bool(torch.zeros(1, device="meta").any())  # what a reading does there


def test_training_pairs_are_served_as_stored(tiny_sample):
    pairs, _ = find_pairs(tiny_sample)
    as_stored = PairedImageDataset(pairs[:4], 32)  # the photo on disk, decoded once
    assert torch.equal(as_stored.__getitems__([0])[0][0], as_stored.inputs[0].float() / 255)


@pytest.fixture(scope="module")
def new_photos(tmp_path_factory):
    return make_new_photos(tmp_path_factory.mktemp("new_photos"), n_pairs=8, size=64)


def test_the_new_photos_split_is_all_test_pairs_of_the_new_photos(new_photos, tmp_path):
    manifest = read_manifest(new_photos)
    assert manifest["args"]["photos"] == "new_photos"
    assert manifest["split"]["train"] == manifest["split"]["val"] == [] and len(manifest["split"]["test"]) == 8
    loader = new_photos_loader(32, batch_size=4, root=new_photos)
    photo, target = next(iter(loader))
    assert photo.shape == (4, 3, 32, 32) and target.shape == (4, 4, 32, 32)
    again = make_new_photos(tmp_path / "again", n_pairs=8, size=64)  # made deterministically
    for name in manifest["targets"]:
        assert (again / "no_bg" / name).read_bytes() == (new_photos / "no_bg" / name).read_bytes()


def test_the_sample_records_which_photos_it_was_drawn_from(tmp_path):
    root = make_sample(tmp_path / "s", n_pairs=6, size=32)
    assert read_manifest(root)["args"]["photos"] == "train"
