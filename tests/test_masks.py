"""Every kind of mask people save is read into the matte it means: 0/1 and class-index masks, 16-bit,
palette, grey saved as RGB or JPEG at full strength; an empty or full mask is left out by name."""

import numpy as np
import pytest
from PIL import Image

from bgremove_utils.data.dataset import PairedImageDataset
from bgremove_utils.data.masks import read_matte

SIZE = 32


def _square(top=1, dtype=np.uint8) -> np.ndarray:
    """An object square in the middle of a SIZE x SIZE mask: `top` on it, 0 around it."""
    mask = np.zeros((SIZE, SIZE), dtype)
    mask[8:24, 8:24] = top
    return mask


OBJECT = _square(255).astype(bool)  # where every mask below has its object


def _pair(tmp_path, save_mask, name="m.png"):
    """A photo and the mask `save_mask(path)` writes, as a one-pair dataset at SIZE."""
    Image.new("RGB", (SIZE, SIZE), (200, 30, 30)).save(tmp_path / "m.jpg")
    (tmp_path / "masks").mkdir(exist_ok=True)
    save_mask(tmp_path / "masks" / name)
    return PairedImageDataset([(tmp_path / "m.jpg", tmp_path / "masks" / name)], image_size=SIZE)


@pytest.mark.parametrize(("top", "kind"), [(1, "0/1 mask"), (200, "two-valued mask (0 and 200)")])
def test_a_0_1_or_two_valued_mask_trains_on_a_full_strength_object(tmp_path, top, kind):
    dataset = _pair(tmp_path, lambda p: Image.fromarray(_square(top), "L").save(p))
    alpha = dataset[0][1][3].numpy()
    assert (alpha[OBJECT] == 1.0).all() and (alpha[~OBJECT] == 0.0).all()
    assert read_matte(tmp_path / "masks" / "m.png").kind == kind


def test_a_class_index_mask_is_object_wherever_its_class_is_not_0(tmp_path):
    classes = _square(1)
    classes[8:24, 16:24] = 3  # two classes of one object: a person's clothes and skin
    Image.fromarray(classes, "L").save(tmp_path / "c.png")
    matte = read_matte(tmp_path / "c.png")
    assert matte.kind == "class-index mask" and matte.values == (0, 3)
    np.testing.assert_array_equal(matte.alpha, OBJECT * 255)


@pytest.mark.parametrize(("classes", "kind"), [((1,), "0/1 mask"), ((1, 2), "class-index mask")])
def test_an_rgb_mask_of_0_1_or_class_indices_is_read_as_its_object_not_as_empty(tmp_path, classes, kind):
    indices = _square(classes[0])
    indices[8:24, 16:24] = classes[-1]  # a second class on half of the object, when there is one
    Image.fromarray(np.dstack([indices] * 3), "RGB").save(tmp_path / "i.png")  # as many tools save a label map
    matte = read_matte(tmp_path / "i.png")
    assert matte.kind == f"{kind} (saved as RGB)" and matte.problem is None
    np.testing.assert_array_equal(matte.alpha, OBJECT * 255)
    Image.fromarray(np.dstack([_square(255)] * 3), "RGB").save(tmp_path / "rgb.png")
    Image.fromarray(_square(255), "L").save(tmp_path / "l.png")  # 0/255 as RGB and as L: the same matte
    np.testing.assert_array_equal(read_matte(tmp_path / "rgb.png").alpha, read_matte(tmp_path / "l.png").alpha)


def test_a_palette_mask_is_object_wherever_its_index_is_not_0(tmp_path):
    indices = _square(1)
    indices[8:16, 8:24] = 15
    image = Image.fromarray(indices, "P")
    image.putpalette([0, 0, 0, 1, 1, 1] + [0, 0, 0] * 13 + [2, 2, 2])  # index 1 and 15 nearly black, as 0 is
    image.save(tmp_path / "p.png")
    matte = read_matte(tmp_path / "p.png")
    assert matte.kind == "palette mask"
    np.testing.assert_array_equal(matte.alpha, OBJECT * 255)


@pytest.mark.parametrize(
    ("top", "soft", "alpha_of_soft"),
    [(65535, 32768, 128), (255, 100, 100)],  # 16-bit values, and 8-bit values stored in 16 bits
    ids=["16-bit", "8-bit-values-in-16-bits"],
)
def test_16_bit_masks_are_read_on_their_own_scale(tmp_path, top, soft, alpha_of_soft):
    mask = _square(top, np.uint16)
    mask[8:24, 24] = soft  # a soft edge
    Image.fromarray(mask).save(tmp_path / "d.png")
    matte = read_matte(tmp_path / "d.png")
    assert matte.alpha[16, 16] == 255 and matte.alpha[0, 0] == 0 and matte.alpha[16, 24] == alpha_of_soft


def test_a_grey_mask_saved_as_rgb_keeps_its_soft_edge(tmp_path):
    grey = _square(255)
    grey[8:24, 24] = 100
    Image.fromarray(np.dstack([grey] * 3), "RGB").save(tmp_path / "g.png")
    matte = read_matte(tmp_path / "g.png")
    assert matte.kind == "grey mask (saved as RGB)" and matte.colours is None  # the photo's colours are used
    np.testing.assert_array_equal(matte.alpha, grey)


def test_an_rgba_picture_opaque_everywhere_is_read_by_its_colours(tmp_path):
    rgba = np.dstack([_square(255)] * 3 + [np.full((SIZE, SIZE), 255, np.uint8)])  # a mask saved with alpha
    Image.fromarray(rgba, "RGBA").save(tmp_path / "o.png")
    np.testing.assert_array_equal(read_matte(tmp_path / "o.png").alpha, OBJECT * 255)


def test_a_jpeg_mask_is_read_without_its_compression_noise(tmp_path):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    radius = np.hypot(yy - 15.5, xx - 15.5)
    Image.fromarray(((radius < 9) * 255).astype(np.uint8), "L").save(tmp_path / "j.jpg", quality=75)
    assert np.asarray(Image.open(tmp_path / "j.jpg"))[radius > 12].max() > 0  # JPEG made the background noisy
    alpha = read_matte(tmp_path / "j.jpg").alpha
    assert (alpha[radius > 12] == 0).all() and (alpha[radius < 6] == 255).all()  # away from the edge, where it rings


@pytest.mark.parametrize(
    ("mask", "says"),
    [(np.zeros((SIZE, SIZE), np.uint8), "empty"), (np.ones((SIZE, SIZE), np.uint8), "full")],
    ids=["empty", "full"],
)
def test_an_empty_or_full_mask_is_named_and_left_out_of_training(tmp_path, mask, says):
    with pytest.warns(UserWarning, match=f"1 pair.s. skipped.*m.png: the mask is {says}"):
        dataset = _pair(tmp_path, lambda p: Image.fromarray(mask, "L").save(p))
    assert len(dataset) == 0 and dataset.skipped[0][0] == tmp_path / "m.jpg"
    assert str(tmp_path / "masks" / "m.png") in dataset.skipped[0][1]


def test_a_palette_masks_void_index_255_is_unsure_not_object(tmp_path):
    index = _square(15)  # PASCAL VOC: class 15, a person, with its outline band marked 255
    index[7, 8:24] = 255
    mask = Image.fromarray(index, "P")
    mask.putpalette([0, 0, 0] + [128, 0, 0] * 254 + [224, 224, 192])
    mask.save(tmp_path / "voc.png")
    alpha = read_matte(tmp_path / "voc.png").alpha
    assert (alpha[OBJECT] == 255).all() and (alpha[7, 8:24] == 128).all() and alpha[0, 0] == 0
