"""The export at the photo's resolution: the matte's edges follow the photo, the colours along them
are the object's own, `refine=False` gives the plain bilinear export, and an output name that is
not .png is refused. A stub stands for the trained network, so each test knows what it predicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from bgremove_utils.cli import main
from bgremove_utils.errors import OutputError
from bgremove_utils.export.inference import predict_matte, process_and_generate, process_folder
from bgremove_utils.models import GModel
from bgremove_utils.settings import GConfig

OBJECT, BACKGROUND = np.array([200, 40, 40]), np.array([40, 90, 200])  # red object left, blue background right


class StubNetwork(torch.nn.Module):
    """Stands for a trained GModel at 64 px: its matte is a soft step, object left of `edge` (a
    fraction of the width), one network pixel per unit of logit (as soft as a network trained with
    BCE draws an edge); its colours are the photo's."""

    config = GConfig(image_size=64)

    def __init__(self, edge: float):
        super().__init__()
        self.edge = edge
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the device

    def small_alpha(self) -> torch.Tensor:
        size = self.config.image_size
        columns = (torch.arange(size) + 0.5) / size
        return torch.sigmoid((self.edge - columns) * size).expand(1, 1, size, -1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:  # as GModel.predict: RGBA
        return torch.cat([x, self.small_alpha()], 1)


def photo_with_edge(true_alpha: np.ndarray) -> Image.Image:
    """The object over the background with the given matte (H, W)."""
    rgb = true_alpha[..., None] * OBJECT + (1 - true_alpha[..., None]) * BACKGROUND
    return Image.fromarray((rgb + 0.5).astype(np.uint8))


def step(width: int = 256, height: int = 192, at: int = 101) -> np.ndarray:
    return np.broadcast_to((np.arange(width) < at).astype(float), (height, width))


def crossing(alpha_row: np.ndarray) -> int:
    """The first column where the matte drops below half."""
    return int(np.argmax(alpha_row < 128))


def test_refined_edge_follows_the_photo_where_bilinear_is_a_blur_at_the_networks_place():
    photo, truth = photo_with_edge(step(at=101)), step(at=101) * 255
    network = StubNetwork(edge=99 / 256)  # the network's edge half a network pixel (2 photo pixels) off
    refined, plain = predict_matte(network, photo), predict_matte(network, photo, refine=False)
    assert crossing(plain[96]) == 99 and crossing(refined[96]) == 101  # onto the photo's edge
    assert np.abs(refined - truth).sum() < np.abs(plain - truth).sum() / 2
    assert (refined[:, 101:] <= 5).all()  # no fringe on the background side...
    assert (plain[96, 101:] > 5).sum() >= 10  # ...where the bilinear ramp spreads over 10 px and more


def test_without_refinement_the_matte_is_the_bilinear_upsampling_and_the_colours_the_photos(tmp_path):
    source = tmp_path / "photo.png"
    photo_with_edge(step(at=101)).save(source)
    network = StubNetwork(edge=101 / 256)
    out = np.asarray(Image.open(process_and_generate(source, tmp_path / "plain.png", network, refine=False)))
    bilinear = F.interpolate(network.small_alpha(), size=(192, 256), mode="bilinear", align_corners=False)
    np.testing.assert_array_equal(out[..., 3], (bilinear[0, 0] * 255 + 0.5).byte().numpy())
    np.testing.assert_array_equal(out[..., :3], np.asarray(Image.open(source)))


def test_colours_in_the_soft_band_are_the_objects_not_the_blend_with_the_old_background(tmp_path):
    ramp = np.clip((108 - np.arange(256)) / 14, 0, 1)  # a soft edge 14 px wide, 94 to 108
    source = tmp_path / "soft.png"
    photo_with_edge(np.broadcast_to(ramp, (192, 256))).save(source)
    network = StubNetwork(edge=101 / 256)
    out = np.asarray(Image.open(process_and_generate(source, tmp_path / "cut.png", network)))
    soft = (out[..., 3] > 0) & (out[..., 3] < 255)
    assert soft.sum() >= 192 * 4
    photo_error = np.abs(np.asarray(Image.open(source))[soft] - OBJECT).mean()
    export_error = np.abs(out[..., :3][soft].astype(float) - OBJECT).mean()
    assert export_error < 0.6 * photo_error  # about half: blur fusion un-blends to first order
    opaque_or_clear = (out[..., 3] == 0) | (out[..., 3] == 255)
    np.testing.assert_array_equal(out[..., :3][opaque_or_clear], np.asarray(Image.open(source))[opaque_or_clear])


def test_a_plain_picture_keeps_its_colours_whatever_the_matte(tmp_path):
    source = tmp_path / "grey.png"
    Image.new("RGB", (40, 30), (128, 128, 128)).save(source)
    torch.manual_seed(0)
    untrained = GModel(image_size=32, base_channels=8, depth=3).eval()  # a matte about 0.5 everywhere
    out = np.asarray(Image.open(process_and_generate(source, tmp_path / "cut.png", untrained)))
    assert (out[..., :3] == 128).all()


@pytest.mark.parametrize("name", ["cut.jpg", "cut.JPEG", "cut.webp", "cut"])
def test_an_output_name_that_is_not_png_is_refused_and_nothing_written(name, tmp_path, capsys):
    source = tmp_path / "in" / "photo.jpg"
    source.parent.mkdir()
    photo_with_edge(step()).save(source)
    before = source.read_bytes()
    target = tmp_path / "out" / name
    with pytest.raises(OutputError, match=r"use a name ending in \.png") as info:
        process_and_generate(source, target, StubNetwork(0.4))
    assert str(target) in str(info.value) and "\n" not in str(info.value)
    if name.lower().endswith((".jpg", ".jpeg")):
        assert "JPEG has no transparency" in str(info.value)
    assert main(["predict", str(source), str(target), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert capsys.readouterr().err == f"error: {info.value}\n"  # refused before the checkpoint is looked for
    assert source.read_bytes() == before and not (tmp_path / "out").exists()


def test_a_folder_as_output_still_gets_stem_png_inside(tmp_path):
    source = tmp_path / "photo.jpg"
    photo_with_edge(step()).save(source)
    (tmp_path / "existing").mkdir()
    network = StubNetwork(0.4)
    assert process_and_generate(source, tmp_path / "existing", network) == tmp_path / "existing" / "photo.png"
    assert process_and_generate(source, f"{tmp_path / 'new'}/", network) == tmp_path / "new" / "photo.png"
    report = process_folder(tmp_path / "existing", tmp_path / "again", network, progress=False, refine=False)
    assert [p.name for p in report.written] == ["photo.png"]


def test_predict_no_refine_gives_the_plain_export(tmp_path):
    torch.manual_seed(0)
    model = GModel(base_channels=8, depth=3, image_size=32)
    config = {"base_channels": 8, "depth": 3, "max_channels": 128, "image_size": 32}
    torch.save({"generator": model.state_dict(), "config": config}, tmp_path / "g.pt")
    source = tmp_path / "photo.png"
    photo_with_edge(step()).save(source)
    assert main(["predict", str(source), str(tmp_path / "refined.png"), "--checkpoint", str(tmp_path / "g.pt")]) == 0
    assert (
        main(["predict", str(source), str(tmp_path / "p2.png"), "--checkpoint", str(tmp_path / "g.pt"), "--no-refine"])
        == 0
    )
    model.eval()
    plain = np.asarray(Image.open(tmp_path / "p2.png"))[..., 3]
    np.testing.assert_array_equal(plain, predict_matte(model, Image.open(source).convert("RGB"), refine=False))
    assert not np.array_equal(plain, np.asarray(Image.open(tmp_path / "refined.png"))[..., 3])
