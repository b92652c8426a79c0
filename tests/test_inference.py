import numpy as np
import pytest
import torch
from PIL import Image

from bgremove_utils.errors import OutputError
from bgremove_utils.export.inference import cut_out, process_and_generate, process_folder
from bgremove_utils.models.checkpoint import load_generator
from bgremove_utils.models.networks import GModel
from bgremove_utils.settings import GConfig


@pytest.fixture(scope="module")
def generator(trained_run):
    return load_generator(trained_run[0] / "best.pt")


def test_output_is_an_rgba_png_the_size_of_the_input(tmp_path, sample_root, generator):
    photo = sorted((sample_root / "with_bg").glob("*.jpg"))[0]
    big = tmp_path / "big.jpg"
    Image.open(photo).resize((301, 203)).save(big)  # not square, not a multiple of anything
    out = process_and_generate(big, tmp_path / "out" / "big.png", generator)
    result = np.asarray(Image.open(out))
    assert Image.open(out).format == "PNG" and result.shape == (203, 301, 4)
    photo_rgb, alpha = np.asarray(Image.open(big).convert("RGB")), result[..., 3]
    changed = (result[..., :3] != photo_rgb).any(-1)
    assert not changed[(alpha == 0) | (alpha == 255)].any()  # the photo's own colours, but in the soft band
    plain = np.asarray(Image.open(process_and_generate(big, tmp_path / "plain.png", generator, refine=False)))
    assert (plain[..., :3] == photo_rgb).all()  # the plain export: the photo's colours everywhere


def test_alpha_follows_the_object(sample_root, tmp_path, generator):
    stem = "sample_00000"
    photo = next((sample_root / "with_bg").glob(stem + ".*"))
    out = process_and_generate(photo, tmp_path / "a.png", generator)
    predicted = np.asarray(Image.open(out))[..., 3] >= 128
    truth = np.asarray(Image.open(sample_root / "no_bg" / f"{stem}.png"))[..., 3] >= 128
    assert (predicted & truth).sum() / (predicted | truth).sum() > 0.5


def test_refuses_to_write_over_its_input(tmp_path, generator):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (10, 200, 10)).save(photo)
    before = photo.read_bytes()
    with pytest.raises(OutputError, match="input"):
        process_and_generate(photo, photo, generator)
    with pytest.raises(OutputError, match="input"):
        process_and_generate(photo, tmp_path / "." / "photo.png", generator)
    assert photo.read_bytes() == before


def test_folder_export_reports_a_bad_file_and_goes_on(tmp_path, generator, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.new("RGB", (48, 32), (i * 60, 100, 200)).save(src / f"good{i}.jpg")
    (src / "broken.png").write_bytes(b"this is not a png")
    report = process_folder(src, tmp_path / "out", generator, progress=False)
    assert sorted(p.name for p in report.written) == ["good0.png", "good1.png", "good2.png"]
    assert [p.name for p, _ in report.failed] == ["broken.png"]
    assert "broken.png" in capsys.readouterr().out
    assert (src / "broken.png").read_bytes() == b"this is not a png"


def test_a_picture_with_transparency_keeps_its_own_colours_and_its_alpha_counts_once():
    torch.manual_seed(0)
    tiny = GModel(GConfig(image_size=32, base_channels=8, max_channels=16, depth=3)).eval()
    rgba = np.zeros((40, 60, 4), dtype=np.uint8)
    rgba[..., 0], rgba[:, :30, 3], rgba[:, 30:, 3] = 255, 128, 255  # pure red: half see-through, half opaque
    picture = Image.fromarray(rgba, "RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", picture.size, (255, 255, 255, 255)), picture).convert("RGB")
    network_alpha = np.asarray(cut_out(flat, tiny, refine=False))[..., 3].astype(np.uint16)  # what G sees
    out = np.asarray(cut_out(picture, tiny, refine=False))
    assert (out[:, :30, :3] == [255, 0, 0]).all()  # not the blend with white, [255, 127, 127]
    assert (out[..., 3] == (network_alpha * rgba[..., 3] + 127) // 255).all()  # G's alpha times its own, once
