import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bgremove_utils.data.augment import augment_batch
from bgremove_utils.data.check import inspect_data
from bgremove_utils.data.dataset import PairedImageDataset, make_loaders
from bgremove_utils.data.images import cutout_alpha
from bgremove_utils.data.pairs import detect_folders, find_pairs, find_splits, hash_split, read_manifest
from bgremove_utils.data.real import real_half, real_loader
from bgremove_utils.errors import DataError
from bgremove_utils.training.loop import train


def _photo(path, colour=(200, 30, 30), size=(40, 40)):
    Image.new("RGB", size, colour).save(path)


def _square_mask(path, size=32, top=255):
    """A grey mask of an object square in the middle, its values 0 and `top` (255, or 1 for 0/1)."""
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : -size // 4, size // 4 : -size // 4] = top
    Image.fromarray(mask, "L").save(path)
    return mask


def test_pairs_files_by_stem_and_reports_orphans(tmp_path):
    bg, no_bg = tmp_path / "bg", tmp_path / "no_bg"
    bg.mkdir(), no_bg.mkdir()
    for name in ("a.jpg", "B.PNG", "only_photo.png"):
        _photo(bg / name)
    for name in ("a.png", "b.png", "only_cutout.png"):
        _photo(no_bg / name)
    (bg / "notes.txt").write_text("not a picture")
    with pytest.warns(UserWarning, match="2 file") as record:
        pairs, orphans = find_pairs(bg, no_bg)
    assert len(record) == 1  # warned once
    assert [(p.name, t.name) for p, t in pairs] == [("a.jpg", "a.png"), ("B.PNG", "b.png")]
    assert sorted(p.name for p in orphans) == ["only_cutout.png", "only_photo.png"]


def _folders(tmp_path, photos="images", masks="masks"):
    (tmp_path / photos).mkdir(parents=True), (tmp_path / masks).mkdir()
    return tmp_path / photos, tmp_path / masks


def test_pairs_masks_with_a_mask_suffix_and_says_by_which_rule(tmp_path):
    images, masks = _folders(tmp_path)
    for stem, mask in [("img0", "img0_mask"), ("img1", "img1-matte"), ("img2", "IMG2_GT"), ("img3", "img3")]:
        _photo(images / f"{stem}.jpg")
        _square_mask(masks / f"{mask}.png", size=40)
    with pytest.warns(UserWarning, match=r"paired 4: 1 by exact stem, 3 by dropping a mask suffix") as record:
        pairs, orphans = find_pairs(images, masks)
    assert len(record) == 1 and "_mask 1" in str(record[0].message) and "_gt 1" in str(record[0].message)
    assert [(p.stem, m.stem) for p, m in pairs] == [
        ("img0", "img0_mask"),
        ("img1", "img1-matte"),
        ("img2", "IMG2_GT"),
        ("img3", "img3"),
    ]
    assert orphans == []


def test_an_exact_stem_is_paired_before_a_mask_suffix_is_dropped(tmp_path, recwarn):
    images, masks = _folders(tmp_path)
    for stem in ("a", "b_mask"):  # a photo whose own stem ends like a mask's
        _photo(images / f"{stem}.jpg")
    for stem in ("a", "a_mask", "b_mask"):
        _square_mask(masks / f"{stem}.png", size=40)
    pairs, orphans = find_pairs(images, masks)
    assert [(p.name, m.name) for p, m in pairs] == [("a.jpg", "a.png"), ("b_mask.jpg", "b_mask.png")]
    assert [o.name for o in orphans] == ["a_mask.png"]
    assert "a_mask.png (a second mask for a.jpg, which is paired with a.png)" in str(recwarn.pop().message)


def test_masks_named_exactly_like_their_photos_pair_without_a_word(tmp_path, recwarn):
    images, masks = _folders(tmp_path)
    for stem in ("x", "y_gt"):
        _photo(images / f"{stem}.jpg")
        _square_mask(masks / f"{stem}.png", size=40)
    assert len(find_pairs(tmp_path)[0]) == 2 and not recwarn.list


def test_a_mask_of_another_aspect_ratio_is_named_and_left_out_another_size_is_not(tmp_path):
    images, masks = _folders(tmp_path)
    for stem in ("rotated", "smaller", "rounded"):
        _photo(images / f"{stem}.jpg", size=(60, 40))
    Image.new("L", (40, 60), 255).save(masks / "rotated_mask.png")  # turned on its side
    Image.new("L", (30, 20)).save(masks / "smaller_mask.png")  # the same aspect ratio, half the size
    Image.new("L", (31, 20)).save(masks / "rounded_mask.png")  # a side rounded when it was resized
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.*")}
    with pytest.warns(UserWarning, match=r"1 file.* left out") as record:
        pairs, orphans = find_pairs(images, masks)
    assert [p.stem for p, _ in pairs] == ["rounded", "smaller"] and [o.name for o in orphans] == ["rotated_mask.png"]
    assert "rotated_mask.png (40x60, another aspect ratio than its photo rotated.jpg (60x40)" in str(record[0].message)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.*")} == before  # nothing in the folder changed


@pytest.mark.usefixtures("one_thread")  # a tiny model (tests/conftest.py)
def test_images_and_masks_with_suffixes_and_0_1_masks_train_from_the_root_alone(tmp_path, tiny_run):
    images, masks = _folders(tmp_path / "data")
    for i in range(20):
        _photo(images / f"img{i}.jpg", size=(48, 32))
        mask = np.zeros((32, 48), np.uint8)
        mask[8:24, 4 + i : 20 + i] = 1  # 0/1, as class-index PNGs are
        Image.fromarray(mask, "L").save(masks / f"img{i}_mask.png")
    with pytest.warns(UserWarning, match="by dropping a mask suffix"):
        loaders = make_loaders(tmp_path / "data", image_size=32, batch_size=4, augment=False)
    alpha = torch.cat([loader.dataset.targets[:, 3] for loader in loaders])
    assert len(alpha) == 20 and alpha.amax((1, 2)).min() == 255  # every matte at full strength
    with pytest.warns(UserWarning, match="by dropping a mask suffix"):
        history = train(data_root=str(tmp_path / "data"), **tiny_run(tmp_path / "ckpt", epochs=1, batch_size=4))
    assert len(history) == 1


@pytest.mark.parametrize(
    ("photos", "cutouts"),
    [
        ("with_bg", "no_bg"),
        ("Images With Background", "Images With No Background"),
        ("original", "without_background"),
    ],
)
def test_detects_the_two_folders_by_their_usual_names(tmp_path, photos, cutouts):
    (tmp_path / "data" / photos).mkdir(parents=True)
    (tmp_path / "data" / cutouts).mkdir(parents=True)
    found = detect_folders(tmp_path)
    assert (found[0].name, found[1].name) == (photos, cutouts)


@pytest.mark.parametrize(
    ("photos", "masks"),
    [
        ("images", "masks"),
        ("images", "annotations"),
        ("imgs", "labels"),
        ("images", "gt"),
        ("Images", "Ground Truth"),
        ("image", "alpha"),
        ("images", "mattes"),
        ("JPEGImages", "SegmentationClass"),
    ],
)
def test_detects_photos_beside_a_folder_of_masks_by_the_usual_names(tmp_path, photos, masks):
    (tmp_path / photos).mkdir(), (tmp_path / masks).mkdir()
    found = detect_folders(tmp_path)
    assert (found[0].name, found[1].name) == (photos, masks)


def test_detects_two_folders_side_by_side_before_two_apart(tmp_path):
    for folder in ("a/masks", "b/images", "b/masks"):
        (tmp_path / folder).mkdir(parents=True)
    assert detect_folders(tmp_path) == (tmp_path / "b" / "images", tmp_path / "b" / "masks")


def test_detects_the_train_folders_before_the_test_folders(tmp_path):
    for folder in ("test/images", "test/masks", "train/images", "train/masks"):
        (tmp_path / folder).mkdir(parents=True)
    assert detect_folders(tmp_path) == (tmp_path / "train" / "images", tmp_path / "train" / "masks")


def test_pictures_only_scored_keep_an_empty_mask_and_each_is_scored_once(tmp_path):
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for i in range(7):
        _photo(tmp_path / "images" / f"p{i}.jpg")
        _square_mask(tmp_path / "masks" / f"p{i}.png", size=40)
    Image.new("L", (40, 40), 0).save(tmp_path / "masks" / "p0.png")  # no object in this picture
    scored = real_loader(tmp_path, 16, "all", batch_size=4)
    assert len(scored.dataset) == 7 and not scored.drop_last
    assert sum(len(photo) for photo, _ in scored) == 7  # every picture once, the empty one included
    with pytest.warns(UserWarning, match="p0.png: the mask is empty"):
        trained = PairedImageDataset(sorted(zip(*(sorted((tmp_path / f).iterdir()) for f in ("images", "masks")))))
    assert len(trained) == 6  # but never trained on


def test_unknown_folder_names_ask_for_explicit_paths(tmp_path):
    (tmp_path / "left").mkdir(), (tmp_path / "right").mkdir()
    with pytest.raises(DataError, match="bg_path"):
        detect_folders(tmp_path)


def _rgba_cutout(path, size=32):
    alpha = np.zeros((size, size), np.uint8)
    alpha[8:24, 4:20] = 255
    alpha[8:24, 20] = 128  # a soft edge
    rgba = np.dstack([np.full((size, size, 3), 90, np.uint8), alpha])
    Image.fromarray(rgba, "RGBA").save(path)
    return alpha


def test_rgba_target_gives_alpha_from_its_a_channel(tmp_path):
    _photo(tmp_path / "x.jpg", size=(32, 32))
    alpha = _rgba_cutout(tmp_path / "x.png")
    _, target = PairedImageDataset([(tmp_path / "x.jpg", tmp_path / "x.png")], image_size=32)[0]
    assert target.shape == (4, 32, 32)
    torch.testing.assert_close(target[3], torch.from_numpy(alpha).float() / 255)


def test_rgb_target_on_a_plain_background_gets_an_estimated_matte(tmp_path):
    rgb = np.full((32, 32, 3), 255, np.uint8)  # white studio background
    rgb[10:20, 6:26] = (30, 120, 200)
    Image.fromarray(rgb).save(tmp_path / "y.png")
    _photo(tmp_path / "y.jpg", size=(32, 32))
    alpha = cutout_alpha(Image.fromarray(rgb))
    assert alpha[15, 15] == 255 and alpha[2, 2] == 0
    _, target = PairedImageDataset([(tmp_path / "y.jpg", tmp_path / "y.png")], image_size=32)[0]
    assert target[3, 15, 15] == 1.0 and target[3, 2, 2] == 0.0
    assert abs(target[3].mean().item() - (10 * 20) / (32 * 32)) < 0.01


def test_a_grey_mask_is_the_alpha_itself_and_the_colours_are_the_photos(tmp_path):
    photo = np.zeros((32, 32, 3), np.uint8)
    photo[..., 0] = 200  # a red photo whose object is a dark-grey square on grey: no border colour to key on
    Image.fromarray(photo).save(tmp_path / "m.png")  # PNG: no JPEG noise in the colours compared below
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    mask[8:24, 24] = 100  # a soft edge, kept as it is
    (tmp_path / "masks").mkdir()
    Image.fromarray(mask, "L").save(tmp_path / "masks" / "m.png")
    _, target = PairedImageDataset([(tmp_path / "m.png", tmp_path / "masks" / "m.png")], image_size=32)[0]
    torch.testing.assert_close(target[3], torch.from_numpy(mask).float() / 255)
    torch.testing.assert_close(target[:3], torch.from_numpy(photo).permute(2, 0, 1).float() / 255)


def test_real_photographs_split_in_two_halves_by_stem_whatever_the_order(tmp_path):
    stems = [f"portrait_{i:03d}" for i in range(40)]
    halves = {stem: real_half(stem) for stem in stems}
    assert set(halves.values()) == {"choose", "report"}
    assert {stem: real_half(stem) for stem in reversed(stems)} == halves  # by the stem alone
    for folder in ("inputs", "targets"):
        (tmp_path / folder).mkdir()
    for stem in stems[:6]:
        _photo(tmp_path / "inputs" / f"{stem}.jpg", size=(16, 16))
        _square_mask(tmp_path / "targets" / f"{stem}.png", size=16)
    found = {half: [p.stem for p, _ in real_loader(tmp_path, 16, half).dataset.pairs] for half in ("choose", "report")}
    assert sorted(found["choose"] + found["report"]) == stems[:6]
    assert all(halves[stem] == half for half, names in found.items() for stem in names)
    assert len(real_loader(tmp_path, 16, "all").dataset) == 6


def test_joint_augmentation_keeps_photo_and_target_aligned(tmp_path):
    size = 64
    yy, xx = np.mgrid[0:size, 0:size]
    inside = ((yy - 20) ** 2 + (xx - 40) ** 2) < 12**2  # an off-centre disc: flips and crops move it
    photo = np.where(inside[..., None], 255, 0).astype(np.uint8).repeat(3, -1)
    Image.fromarray(photo).save(tmp_path / "d.png")
    cut = np.dstack([photo, (inside * 255).astype(np.uint8)])
    (tmp_path / "t").mkdir()
    Image.fromarray(cut, "RGBA").save(tmp_path / "t" / "d.png")
    dataset = PairedImageDataset([(tmp_path / "d.png", tmp_path / "t" / "d.png")], image_size=size, augment=True)
    torch.manual_seed(0)
    one_by_one = [dataset[0] for _ in range(12)]  # v2, one picture a call
    as_a_batch = dataset.__getitems__([0] * 12)  # what a DataLoader asks for: augment_batch
    for x, y in one_by_one + as_a_batch:
        torch.testing.assert_close(x[0], y[3], atol=0.02, rtol=0)  # the photo's disc is where alpha is
    for items in (one_by_one, as_a_batch):
        moved = sum(not torch.equal(y[3], dataset.targets[0, 3].float() / 255) for _, y in items)
        assert moved >= 6  # and the augmentation really changed the pictures
        assert len({y[3].sum().item() for _, y in items}) >= 6  # each picture its own crop


def test_augmentation_keeps_the_colour_of_a_white_objects_soft_edge(tmp_path):
    size = 64
    yy, xx = np.mgrid[0:size, 0:size]
    alpha = np.clip((14 - np.hypot(yy - 30, xx - 34)) / 6, 0, 1)  # a disc whose edge fades over 6 pixels
    white = np.where(alpha[..., None] > 0, 255, 0).astype(np.uint8).repeat(3, -1)  # black under alpha 0
    Image.fromarray(white).save(tmp_path / "w.png")
    (tmp_path / "t").mkdir()
    Image.fromarray(np.dstack([white, (alpha * 255).round().astype(np.uint8)]), "RGBA").save(tmp_path / "t" / "w.png")
    dataset = PairedImageDataset([(tmp_path / "w.png", tmp_path / "t" / "w.png")], image_size=size, augment=True)
    torch.manual_seed(0)
    for _, cutout in dataset.__getitems__([0] * 12):
        edge = (cutout[3] > 0.02) & (cutout[3] < 0.98)
        assert edge.sum() > 50  # the soft edge is there, and moved by the crop
        assert cutout[:3, edge].min() > 0.97  # white, not darkened towards the black stored under alpha 0


def test_batch_augmentation_crops_like_random_resized_crop():
    size = 64
    ramp = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # each pixel's x (and y) in (0, 1)
    images = torch.stack([ramp.expand(size, size), ramp[:, None].expand(size, size)])[None].repeat(200, 1, 1, 1)
    out = augment_batch(images)
    width = out[:, 0].amax((1, 2)) - out[:, 0].amin((1, 2))
    height = out[:, 1].amax((1, 2)) - out[:, 1].amin((1, 2))
    area = width * height  # the fraction of the picture each crop shows
    assert area.min() > 0.5 * 0.9 and area.max() <= 1.0 and area.std() > 0.05
    flipped = out[:, 0, :, 0] > out[:, 0, :, -1]  # x runs right to left
    assert 60 < flipped.all(1).sum() < 140 and (flipped.any(1) == flipped.all(1)).all()


def test_zoom_out_shrinks_half_the_pictures_and_keeps_the_pairs_aligned(tmp_path):
    size = 64
    ramp = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # each pixel's x in (0, 1)
    images = ramp.expand(1, 1, size, size).repeat(400, 1, 1, 1)
    torch.manual_seed(0)
    # How many of the stored picture's pixels one pixel of the output steps over: at most 1 in a crop
    # (it enlarges), 1 / side in a picture shrunk to a share `side` of the frame.
    out = augment_batch(images, zoom_out=0.5)
    stride = (out.diff(dim=3).abs() * size).amax((1, 2, 3))
    shrunk = stride > 1.02
    assert 150 < shrunk.sum() < 250  # half of them
    assert stride.max() <= 2.0 + 1e-4 and stride[shrunk].mean() > 1.3  # down to half the side
    lowest, highest = out[shrunk].amin((1, 2, 3)), out[shrunk].amax((1, 2, 3))
    assert (lowest < ramp[0] + 1 / size).all() and (highest > ramp[-1] - 1 / size).all()  # whole, inside the frame
    assert (augment_batch(images).diff(dim=3).abs() * size).amax() <= 1.0 + 1e-4  # off by default

    yy, xx = np.mgrid[0:size, 0:size]
    inside = ((yy - 20) ** 2 + (xx - 40) ** 2) < 12**2
    photo = np.where(inside[..., None], 255, 0).astype(np.uint8).repeat(3, -1)
    Image.fromarray(photo).save(tmp_path / "d.png")
    (tmp_path / "t").mkdir()
    Image.fromarray(np.dstack([photo, (inside * 255).astype(np.uint8)]), "RGBA").save(tmp_path / "t" / "d.png")
    pair = [(tmp_path / "d.png", tmp_path / "t" / "d.png")]
    dataset = PairedImageDataset(pair, image_size=size, augment=True, zoom_out=0.5)
    items = dataset.__getitems__([0] * 40)
    for x, y in items:
        torch.testing.assert_close(x[0], y[3], atol=0.02, rtol=0)  # the photo's disc is where alpha is
    rows = [((y[3] > 0.5).sum(1) > 0).sum().item() for _, y in items]  # how many rows the disc spans
    assert sum(r < 20 for r in rows) >= 10  # many shrunk from their 23 rows (crops only enlarge it)


def test_loaders_split_the_sample_and_batch_it(quick_loaders, sample_root):
    assert [len(x.dataset) for x in quick_loaders] == [480, 60, 60]
    photo, target = next(iter(quick_loaders.test))
    assert photo.shape == (32, 3, 64, 64) and target.shape == (32, 4, 64, 64)
    assert photo.dtype == torch.float32 and 0 <= photo.min() and photo.max() <= 1
    assert quick_loaders.train.dataset.inputs.dtype == torch.uint8  # decoded once, kept small


def test_loaders_from_explicit_folders_with_the_seed_names(tmp_path):
    bg, no_bg = tmp_path / "photos", tmp_path / "cutouts"
    bg.mkdir(), no_bg.mkdir()
    for i in range(10):
        _photo(bg / f"{i}.jpg")
        _rgba_cutout(no_bg / f"{i}.png")
    loaders = make_loaders(bg_path=bg, no_bg_path=no_bg, image_size=32, batch_size=4)
    assert sum(len(x.dataset) for x in loaders) == 10 and len(loaders.test.dataset) >= 1


def _pairs(stems):
    return [(Path(f"photos/{stem}.jpg"), Path(f"masks/{stem}.png")) for stem in stems]


def _where(splits):
    return {photo.stem: name for name, pairs in splits.items() for photo, _ in pairs}


def test_adding_a_pair_moves_no_other_picture_between_splits(tmp_path):
    stems = [f"photo_{i:03d}" for i in range(100)]
    _folder_of_pairs(tmp_path, stems, size=(8, 8))
    before = _where(find_splits(tmp_path))
    _photo(tmp_path / "images" / "photo_new.jpg", size=(8, 8))
    _square_mask(tmp_path / "masks" / "photo_new.png", size=8)
    after = _where(find_splits(tmp_path))
    assert len(after) == 101 and {stem: after[stem] for stem in stems} == before  # every picture where it was
    counts = Counter(before.values())
    assert 4 <= counts["val"] <= 18 and 4 <= counts["test"] <= 18  # about a tenth each
    assert _where(hash_split(_pairs(reversed(stems)))) == before  # whatever the listing order


def test_a_videos_frames_stay_together_in_one_split():
    stems = [f"davis_{video}_{frame:05d}" for video in ("bear", "boat", "bus", "cows", "dog") for frame in range(8)]
    stems += [f"portrait_{i}" for i in range(30)]
    sequences = {stem: stem.rsplit("_", 1)[0] for stem in stems if stem.startswith("davis")}
    where = _where(hash_split(_pairs(stems), sequences))
    for video in ("bear", "boat", "bus", "cows", "dog"):
        assert len({where[stem] for stem in stems if stem.startswith(f"davis_{video}_")}) == 1


def test_a_small_folder_still_has_a_picture_in_val_and_in_test():
    splits = hash_split(_pairs(["a", "b", "c"]))
    assert [len(splits[name]) for name in ("train", "val", "test")] == [1, 1, 1]


def _folder_of_pairs(root, stems, size=(40, 40)):
    (root / "images").mkdir(parents=True), (root / "masks").mkdir()
    for stem in stems:
        _photo(root / "images" / f"{stem}.jpg", size=size)
        _square_mask(root / "masks" / f"{stem}.png", size=size[0])


def test_a_folders_manifest_csv_groups_its_videos_frames_when_training(tmp_path):
    stems = [f"clip{c}_{f:02d}" for c in range(6) for f in range(4)]
    _folder_of_pairs(tmp_path, stems)
    rows = ["stem,sequence"] + [f"{stem},{stem[:5]}" for stem in stems]
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    where = _where(find_splits(tmp_path))
    assert all(len({where[s] for s in stems if s.startswith(f"clip{c}")}) == 1 for c in range(6))


def test_several_folders_joined_by_pathsep_are_one_data_set_each_split_as_alone(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _folder_of_pairs(first, [f"a{i}" for i in range(12)])
    _folder_of_pairs(second, [f"b{i}" for i in range(12)])
    both = find_splits(f"{first}{os.pathsep}{second}")
    alone = [find_splits(first), find_splits(second)]
    for name in ("train", "val", "test"):
        assert both[name] == alone[0][name] + alone[1][name]
    with pytest.raises(DataError, match="nowhere: no such folder"):
        find_splits(f"{first}{os.pathsep}{tmp_path / 'nowhere'}")


def test_a_folders_own_manifest_json_of_another_kind_is_not_taken_for_the_courses(tmp_path):
    _folder_of_pairs(tmp_path, [f"p{i}" for i in range(10)])
    (tmp_path / "manifest.json").write_text('{"name": "a downloaded data set", "files": 10}')
    assert read_manifest(tmp_path) is None
    assert sum(len(pairs) for pairs in find_splits(tmp_path).values()) == 10
    assert "pairs to use" in str(inspect_data(tmp_path))


def test_real_photographs_of_one_source_are_scored_apart(tmp_path):
    for folder in ("inputs", "targets"):
        (tmp_path / folder).mkdir()
    stems = ["portrait_001", "portrait_002", "davis_cows_00001", "horse_007"]
    for stem in stems:
        _photo(tmp_path / "inputs" / f"{stem}.jpg", size=(16, 16))
        _square_mask(tmp_path / "targets" / f"{stem}.png", size=16)
    assert [p.stem for p, _ in real_loader(tmp_path, 16, source="portrait").dataset.pairs] == stems[:2]
    assert [p.stem for p, _ in real_loader(tmp_path, 16, source="davis").dataset.pairs] == ["davis_cows_00001"]
    with pytest.raises(DataError, match="source cat"):
        real_loader(tmp_path, 16, source="cat")
