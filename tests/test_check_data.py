"""check-data, what a learner runs on a folder before training on it: what was found and paired by
which rule, what is left out and why (the same files training leaves out), how the masks were read,
the split; and a drawing of a few pairs, matte over photo. Nothing in the folder changes."""

import numpy as np
import pytest
from PIL import Image

from bgremove_utils.cli import main
from bgremove_utils.course.check import check_data
from bgremove_utils.data.check import inspect_data
from bgremove_utils.data.dataset import make_loaders


def _mask(path, size=(48, 32), top=255):
    mask = np.zeros((size[1], size[0]), np.uint8)
    mask[size[1] // 4 : -size[1] // 4, size[0] // 4 : -size[0] // 4] = top
    Image.fromarray(mask, "L").save(path)


@pytest.fixture
def folder(tmp_path):
    """A folder as people download them: images/ and masks/, 0/1 masks with a _mask suffix, grey
    masks of the exact stem, an orphan, a rotated mask and an empty one."""
    root = tmp_path / "my data"
    (root / "images").mkdir(parents=True), (root / "masks").mkdir()
    for i in [*range(13), 14]:  # img14: its name lands it in the training split
        Image.new("RGB", (48, 32), (20 * i, 90, 160)).save(root / "images" / f"img{i:02d}.jpg")
        if i < 6:
            _mask(root / "masks" / f"img{i:02d}_mask.png", top=1)
        elif i < 12:
            _mask(root / "masks" / f"img{i:02d}.png")
    _mask(root / "masks" / "img12_mask.png", size=(32, 48))  # turned on its side
    _mask(root / "masks" / "img14.png", top=0)  # empty
    _mask(root / "masks" / "nobody.png")
    return root


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_check_data_says_what_it_found_paired_and_left_out_and_why(folder):
    text = str(inspect_data(folder))
    assert "images/ (found by its usual name)" in text and "masks/" in text
    assert "paired 13: 7 by exact stem, 6 by dropping a mask suffix (_mask 6)" in text
    assert "0/1 mask: 6, values 0-1" in text and "grey mask: 6, values 0-255" in text
    assert "left out   3 file(s)" in text
    assert "nobody.png: no photo of the same stem" in text
    assert "img12_mask.png: 32x48, another aspect ratio than its photo img12.jpg (48x32)" in text
    assert "img14.png: the mask is empty" in text
    assert "train 7, val 1, test 4 pairs to use" in text  # 12 usable of the 13 paired, as training splits them
    assert "25% of a picture (median)" in text  # the object: half the width, half the height


def test_check_data_leaves_out_what_training_leaves_out(folder):
    report = inspect_data(folder)
    with pytest.warns(UserWarning) as said:
        loaders = make_loaders(folder, image_size=16, batch_size=2, augment=False)
    warned = " ".join(str(warning.message) for warning in said)
    assert {path.name for path, _ in report.left_out} == {"nobody.png", "img12_mask.png", "img14.png"}
    assert all(path.name in warned for path, _ in report.left_out)  # training names each of them too
    assert sorted(pair for loader in loaders for pair in loader.dataset.pairs) == sorted(report.usable)
    counts = {name: len(getattr(loaders, name).dataset) for name in ("train", "val", "test")}
    assert counts == {name: sum(p in report.usable for p in pairs) for name, pairs in report.splits.items()}


def test_check_data_draws_pairs_with_their_mattes_and_names_each_kind(folder, capsys):
    figure = check_data(folder, n_images=4)
    assert "paired 13" in capsys.readouterr().out  # the report is printed
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert len(titles) == 4 and {t.split("\n")[1] for t in titles} == {"0/1 mask", "grey mask"}  # one of each first
    assert all(ax.images for ax in figure.axes[:4])


def test_cli_check_data_prints_the_report_saves_the_drawing_and_changes_nothing(folder, tmp_path, capsys):
    before = _snapshot(folder)
    figure = tmp_path / "out" / "check.png"
    assert main(["check-data", str(folder), "--figure", str(figure), "--n-images", "3"]) == 0
    out = capsys.readouterr().out
    assert "paired 13" in out and "img14.png: the mask is empty" in out and str(figure) in out
    with Image.open(figure) as drawing:
        assert drawing.format == "PNG" and drawing.width > 300
    assert _snapshot(folder) == before


def test_cli_check_data_of_a_folder_that_is_not_there_is_one_error_line(tmp_path, capsys):
    assert main(["check-data", str(tmp_path / "nowhere"), "--figure", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere: no such folder" in err and "Traceback" not in err
