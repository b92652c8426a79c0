"""Hostile inputs, made in each test: every one is either converted and processed, or refused with
one bgremove_utils error that names the file and says what to do. The folder export and the
dataset go on past a bad file and list it at the end; no input file is ever changed.
"""

from __future__ import annotations

import errno
import io
import os
import struct
import subprocess
import sys
import unicodedata
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bgremove_utils.cli import main
from bgremove_utils.data import dataset as data
from bgremove_utils.data.dataset import PairedImageDataset, make_loaders
from bgremove_utils.data.pairs import find_pairs
from bgremove_utils.data.sample import make_sample
from bgremove_utils.errors import BgRemoveError, ConfigError, ImageError, OutputError
from bgremove_utils.export.inference import process_and_generate, process_folder
from bgremove_utils.models import GModel
from bgremove_utils.training.loop import train

# ---------------------------------------------------------------- the hostile files


def png_bytes(width: int, height: int, rows: bytes, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A PNG written by hand: for what Pillow will not write (16-bit RGB, a huge declared size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def quadrants(width: int = 64, height: int = 48) -> Image.Image:
    """Red top-left, green right half, blue bottom-left: shows any rotation."""
    image = Image.new("RGB", (width, height), (20, 20, 220))
    image.paste((220, 20, 20), (0, 0, width // 2, height // 2))
    image.paste((20, 220, 20), (width // 2, 0, width, height))
    return image


def encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


def noisy(size=(64, 48)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _palette(path: Path) -> None:
    image = Image.new("P", (40, 30), 1)
    image.putpalette([0, 0, 0, 200, 30, 30])
    image.paste(0, (0, 0, 20, 30))  # left half: the transparent colour
    image.save(path, transparency=0)


def _exif_rotated(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    quadrants().save(path, exif=exif, quality=95)


MAKERS = {  # name: (file name, writer)
    "empty": ("empty.png", lambda p: p.write_bytes(b"")),
    "truncated_png": ("cut_short.png", lambda p: p.write_bytes(encoded(noisy(), "PNG")[:-400])),
    "truncated_jpeg": ("cut_short_jpeg.jpg", lambda p: p.write_bytes(encoded(noisy(), "JPEG")[:1500])),
    "text_named_png": ("notes.png", lambda p: p.write_text("these are my notes, not a picture")),
    "bomb": ("bomb.png", lambda p: p.write_bytes(png_bytes(20000, 20000, b"\x00" * 16, 8, 0))),
    "cmyk_jpeg": ("cmyk.jpg", lambda p: Image.new("CMYK", (40, 30), (255, 0, 0, 0)).save(p)),
    "png_16bit_gray": ("gray16.png", lambda p: Image.fromarray(np.full((30, 40), 32896, np.uint16)).save(p)),
    "png_16bit_rgb": (
        "rgb16.png",
        lambda p: p.write_bytes(
            png_bytes(40, 30, b"".join(b"\x00" + np.full((40, 3), 0x8040, ">u2").tobytes() for _ in range(30)), 16)
        ),
    ),
    "tiff_float": ("float.tif", lambda p: Image.fromarray(np.full((30, 40), 0.5, np.float32), "F").save(p)),
    "grayscale": ("gray.jpg", lambda p: Image.new("L", (40, 30), 77).save(p)),
    "palette_transparency": ("palette.png", _palette),
    "rgba": ("rgba.png", lambda p: Image.new("RGBA", (40, 30), (30, 60, 200, 128)).save(p)),
    "exif_rotated": ("exif.jpg", _exif_rotated),
    "one_pixel": ("one.png", lambda p: Image.new("RGB", (1, 1), (1, 2, 3)).save(p)),
    "spaces_non_ascii": ("my phöto ü 日本.jpg", lambda p: quadrants().save(p)),
}
REFUSED = {  # what the error says about the file, and what to do
    "empty": "empty .0 bytes.; replace or delete it",
    "truncated_png": "damaged or truncated .*; replace or delete it",
    "truncated_jpeg": "damaged or truncated .*; replace or delete it",
    "text_named_png": "not a picture Pillow can read .*; replace or delete it",
    "bomb": "more pixels than Pillow's safety limit .*shrink it first",
}
HANDLED = [name for name in MAKERS if name not in REFUSED]
DISPLAYED_SIZE = {"exif_rotated": (48, 64), "one_pixel": (1, 1), "spaces_non_ascii": (64, 48)}


def make(folder: Path, name: str) -> Path:
    filename, write = MAKERS[name]
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / filename)
    return folder / filename


def snapshot(folder: Path) -> dict:
    """Every file's bytes and mtime: what must not change."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Temporary or partial files an export may have left."""
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp")


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)


def assert_clear(exc: BaseException, path: Path) -> None:
    """A bgremove_utils error naming the file, with no Pillow or torch exception chained to it."""
    assert isinstance(exc, BgRemoveError)
    assert str(path) in str(exc)
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)  # no chained traceback


@pytest.fixture(scope="module")
def generator() -> GModel:
    torch.manual_seed(0)
    return GModel(image_size=32, base_channels=8, depth=3).eval()


@pytest.fixture(scope="module")
def checkpoint(generator, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "g.pt"
    config = {"base_channels": 8, "depth": 3, "max_channels": 128, "image_size": 32}  # flat, as before the parts
    torch.save({"generator": generator.state_dict(), "config": config}, path)
    return path


# ---------------------------------------------------------------- one picture


@pytest.mark.parametrize("case", list(MAKERS))
def test_one_picture_is_cut_out_or_refused_with_one_clear_error(case, tmp_path, generator):
    source = make(tmp_path / "in", case)
    before = snapshot(tmp_path / "in")
    out = tmp_path / "out" / "cut.png"
    if case in REFUSED:
        with pytest.raises(ImageError, match=REFUSED[case]) as info:
            process_and_generate(source, out, generator)
        assert_clear(info.value, source)
        assert not out.exists()
    else:
        process_and_generate(source, out, generator)
        with Image.open(out) as result:
            assert result.format == "PNG" and result.mode == "RGBA"
            assert result.size == DISPLAYED_SIZE.get(case, (40, 30))
    assert leftovers(tmp_path) == []
    assert snapshot(tmp_path / "in") == before


def test_exif_rotated_jpeg_is_cut_out_as_displayed(tmp_path, generator):
    out = process_and_generate(make(tmp_path, "exif_rotated"), tmp_path / "out.png", generator)
    rgb = np.asarray(Image.open(out))[..., :3].astype(int)  # (64, 48, 3): portrait, as displayed
    assert rgb.shape == (64, 48, 3)
    # rotated clockwise: the stored top-left red is now top-right, the stored bottom-left blue top-left
    assert rgb[:32, 24:].mean((0, 1)) == pytest.approx([220, 20, 20], abs=12)
    assert rgb[:32, :24].mean((0, 1)) == pytest.approx([20, 20, 220], abs=12)
    assert rgb[32:].mean((0, 1)) == pytest.approx([20, 220, 20], abs=12)


@pytest.mark.parametrize(
    ("case", "rgb"),
    [
        ("cmyk_jpeg", (0, 255, 255)),
        ("png_16bit_gray", (128, 128, 128)),
        ("png_16bit_rgb", (128, 128, 128)),
        ("tiff_float", (128, 128, 128)),  # values in [0, 1]: read on that scale, not as 0-255 (black)
    ],
)
def test_cmyk_16_bit_and_float_pictures_keep_their_colours(case, rgb, tmp_path, generator):
    out = process_and_generate(make(tmp_path, case), tmp_path / "out.png", generator)
    assert np.asarray(Image.open(out))[..., :3].reshape(-1, 3).mean(0) == pytest.approx(rgb, abs=2)


@pytest.mark.parametrize("case", ["rgba", "palette_transparency"])
def test_transparent_parts_of_an_input_stay_transparent(case, tmp_path, generator):
    source = make(tmp_path, case)
    own_alpha = np.asarray(Image.open(source).convert("RGBA"))[..., 3].astype(int)
    alpha = np.asarray(Image.open(process_and_generate(source, tmp_path / "out.png", generator)))[..., 3].astype(int)
    assert (alpha[own_alpha == 0] == 0).all()
    assert (alpha <= own_alpha).all() and alpha.max() > 0


def test_picture_over_pillows_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch, generator):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40 x 30 = 1200: Pillow only warns below 2x
    source = make(tmp_path, "grayscale")
    with pytest.raises(ImageError, match="safety limit .1,000.*MAX_IMAGE_PIXELS") as info:
        process_and_generate(source, tmp_path / "out.png", generator)
    assert_clear(info.value, source)


def test_output_equal_to_the_input_is_refused_and_the_input_kept(tmp_path, generator, checkpoint, capsys):
    source = make(tmp_path, "rgba")
    before = snapshot(tmp_path)
    for same in (source, tmp_path / "." / source.name, tmp_path / "link.png"):
        if same.name == "link.png":
            same.symlink_to(source)
        with pytest.raises(OutputError, match="input picture itself; choose another output path") as info:
            process_and_generate(source, same, generator)
        assert str(same) in str(info.value)
        assert main(["predict", str(source), str(same), "--checkpoint", str(checkpoint)]) == 2
        assert capsys.readouterr().err == f"error: {info.value}\n"
    assert {p: v for p, v in snapshot(tmp_path).items() if p.name != "link.png"} == before


def test_an_existing_folder_as_output_gets_the_picture_inside(tmp_path, generator):
    source = make(tmp_path / "in", "grayscale")
    (tmp_path / "out").mkdir()
    assert process_and_generate(source, tmp_path / "out", generator) == tmp_path / "out" / "gray.png"


def unwritable_outputs(tmp_path: Path) -> list[Path]:
    """Folders that cannot be written, even by root: below a regular file, and in /sys (Linux)."""
    (tmp_path / "a_file.txt").write_text("not a folder")
    folders = [tmp_path / "a_file.txt" / "out"]
    probe = Path("/sys/bgremove_test_probe")
    try:
        probe.mkdir()
        probe.rmdir()  # writable after all: not a test case here
    except OSError:
        if Path("/sys").is_dir():
            folders.append(Path("/sys/bgremove_test_out"))
    return folders


def test_unwritable_output_folder_is_one_clear_error(tmp_path, generator, checkpoint, capsys):
    source = make(tmp_path / "in", "grayscale")
    before = snapshot(tmp_path / "in")
    for folder in unwritable_outputs(tmp_path):
        with pytest.raises(OutputError, match="choose another output folder") as info:
            process_and_generate(source, folder / "cut.png", generator)
        assert_clear(info.value, folder / "cut.png")
        with pytest.raises(OutputError, match="choose another") as info:  # the folder export: once, not per file
            process_folder(tmp_path / "in", folder, generator, progress=False)
        assert str(folder) in str(info.value)
        assert main(["predict", str(source), str(folder / "cut.png"), "--checkpoint", str(checkpoint)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and str(folder) in err
    assert snapshot(tmp_path / "in") == before


# ---------------------------------------------------------------- disk full


def test_disk_full_while_writing_names_the_file_and_leaves_no_partial_png(tmp_path, monkeypatch, generator):
    real_save = Image.Image.save

    def save_then_full(self, fp, *args, **kwargs):
        real_save(self.crop((0, 0, 4, 4)), fp, *args, **kwargs)  # some bytes reach the disk...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then it is full

    source = make(tmp_path / "in", "grayscale")
    monkeypatch.setattr(Image.Image, "save", save_then_full)
    out = tmp_path / "out" / "cut.png"
    with pytest.raises(OutputError, match="disk is full.*free some space") as info:
        process_and_generate(source, out, generator)
    assert_clear(info.value, out)
    assert list((tmp_path / "out").iterdir()) == []  # neither the PNG nor its temporary file


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 64 KiB file system, where mounting is allowed (root on Linux); skipped elsewhere."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip("cannot mount a tmpfs here: the patched test above covers a full disk")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_disk_full_on_a_real_tiny_file_system(tmp_path, tiny_tmpfs, generator):
    big = tmp_path / "in" / "big.png"
    big.parent.mkdir()
    noisy((200, 150)).save(big)  # its cut-out, RGBA and noisy, is larger than 64 KiB
    with pytest.raises(OutputError, match="disk is full") as info:
        process_and_generate(big, tiny_tmpfs / "big.png", generator)
    assert_clear(info.value, tiny_tmpfs / "big.png")
    assert list(tiny_tmpfs.iterdir()) == []
    report = process_folder(tmp_path / "in", tiny_tmpfs, generator, progress=False)
    assert report.written == [] and [p.name for p, _ in report.failed] == ["big.png"]
    assert list(tiny_tmpfs.iterdir()) == []


# ---------------------------------------------------------------- the folder export


def test_folder_export_goes_on_past_every_bad_file_and_lists_them_at_the_end(tmp_path, generator, capsys):
    for case in MAKERS:
        make(tmp_path / "in", case)
    before = snapshot(tmp_path / "in")
    report = process_folder(tmp_path / "in", tmp_path / "out", generator, progress=False)
    assert sorted(p.name for p in report.written) == sorted(Path(MAKERS[c][0]).stem + ".png" for c in HANDLED)
    assert sorted(p.name for p, _ in report.failed) == sorted(MAKERS[c][0] for c in REFUSED)
    for path, message in report.failed:  # each file named as in its folder, the same on every machine
        assert path.name in message and str(path.parent) not in message
    printed = capsys.readouterr().out
    assert printed.startswith(f"{len(HANDLED)} cut-out(s) written, {len(REFUSED)} file(s) failed")
    assert all(MAKERS[c][0] in printed for c in REFUSED)
    assert snapshot(tmp_path / "in") == before
    assert leftovers(tmp_path / "out") == []


def test_folder_export_into_its_own_folder_never_replaces_an_input(tmp_path, generator):
    folder = tmp_path / "photos"
    for case in ("rgba", "grayscale"):
        make(folder, case)
    Image.new("RGB", (8, 8)).save(folder / "gray.jpeg")  # a second "gray": both would write gray.png
    before = snapshot(folder)
    report = process_folder(folder, folder, generator, progress=False)
    assert [p.name for p in report.written] == ["gray.png"]
    failed = dict(report.failed)
    assert sorted(p.name for p in failed) == ["gray.jpg", "rgba.png"]
    assert "already written from another picture named gray; rename one" in failed[folder / "gray.jpg"]
    assert "would replace an input picture" in failed[folder / "rgba.png"]
    assert {p: v for p, v in snapshot(folder).items() if p.name != "gray.png"} == before


def test_folder_without_pictures_says_so(tmp_path, generator):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "IMG_0001.HEIC").write_bytes(b"\x00" * 10)
    with pytest.raises(ImageError, match="no pictures in this folder"):
        process_folder(tmp_path / "in", tmp_path / "out", generator, progress=False)


# ---------------------------------------------------------------- find_pairs and the dataset


def _cutout(path: Path, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    alpha = np.zeros((size[1], size[0]), np.uint8)
    alpha[size[1] // 4 : -size[1] // 4, size[0] // 4 : -size[0] // 4] = 255
    Image.fromarray(np.dstack([np.full((size[1], size[0], 3), 90, np.uint8), alpha]), "RGBA").save(path)


# As a cut-out, each of these is one colour (or differs from its border's colour everywhere): a matte with
# no object or nothing but object, which the dataset leaves out by name rather than train on.
NO_OBJECT = [name for name in HANDLED if name != "palette_transparency"]


def test_dataset_goes_on_past_every_bad_file_and_lists_them(tmp_path):
    bg, no_bg = tmp_path / "with_bg", tmp_path / "no_bg"
    for case in MAKERS:  # each hostile file once as a photo, once as a cut-out
        photo = make(bg, case)
        _cutout(no_bg / f"{photo.stem}.png", size=(30, 40) if case == "exif_rotated" else (40, 30))  # as shown
        cutout = make(no_bg / "hostile", case)
        target = no_bg / f"t_{Path(MAKERS[case][0]).stem}{cutout.suffix}"
        cutout.rename(target)
        quadrants(*DISPLAYED_SIZE.get(case, (64, 48))).save(bg / f"t_{Path(MAKERS[case][0]).stem}.jpg")
    before = snapshot(tmp_path)
    pairs, orphans = find_pairs(bg, no_bg)
    assert len(pairs) == 2 * len(MAKERS) and orphans == []
    n_skipped = 2 * len(REFUSED) + len(NO_OBJECT)
    with pytest.warns(UserWarning, match=f"{n_skipped} pair.s. skipped") as record:
        dataset = PairedImageDataset(pairs, image_size=32)
    assert len(record) == 1
    assert len(dataset) == 2 * len(MAKERS) - n_skipped
    bad = sorted(Path(MAKERS[c][0]).stem for c in REFUSED)
    no_object = [f"t_{Path(MAKERS[c][0]).stem}" for c in NO_OBJECT]
    assert sorted(p.stem for p, _ in dataset.skipped) == sorted(bad + [f"t_{s}" for s in bad] + no_object)
    cutout_of = dict(pairs)
    for photo, message in dataset.skipped:  # the message names the bad file, photo or cut-out
        assert str(photo if photo.stem in bad else cutout_of[photo]) in message
    x, y = dataset[0]
    assert x.shape == (3, 32, 32) and y.shape == (4, 32, 32)
    assert snapshot(tmp_path) == before


def test_exif_rotation_is_applied_in_the_dataset_too(tmp_path):
    make(tmp_path / "with_bg", "exif_rotated")
    _cutout(tmp_path / "no_bg" / "exif.png", size=DISPLAYED_SIZE["exif_rotated"])  # the mask of the photo as shown
    x, _ = PairedImageDataset(find_pairs(tmp_path / "with_bg", tmp_path / "no_bg")[0], image_size=32)[0]
    assert x[:, :8, 24:].mean((1, 2)).tolist() == pytest.approx([220 / 255, 20 / 255, 20 / 255], abs=0.06)


def test_same_stem_of_different_sizes_is_one_pair_resized_alike(tmp_path):
    (tmp_path / "bg").mkdir(), (tmp_path / "no_bg").mkdir()
    quadrants(96, 72).save(tmp_path / "bg" / "a.jpg")
    _cutout(tmp_path / "no_bg" / "a.png", size=(40, 30))
    x, y = PairedImageDataset(find_pairs(tmp_path / "bg", tmp_path / "no_bg")[0], image_size=32)[0]
    assert x.shape == (3, 32, 32) and y.shape == (4, 32, 32)
    assert y[3, 16, 16] == 1.0 and y[3, 1, 1] == 0.0  # the matte scaled with the picture


def test_orphans_on_both_sides_and_unusual_names_are_reported_not_fatal(tmp_path):
    bg, no_bg = tmp_path / "Images With Background", tmp_path / "images without background"
    bg.mkdir(), no_bg.mkdir()
    stems = ["plain", "with spaces", "café", "日本の写真"]
    for stem in stems:
        quadrants().save(bg / f"{stem}.jpg")
        name = unicodedata.normalize("NFD", stem) if stem == "café" else stem  # as macOS writes it
        _cutout(no_bg / f"{name}.png")
    quadrants().save(bg / "only photo.jpg")
    _cutout(no_bg / "only cut-out ü.png")
    with pytest.warns(UserWarning, match="2 file.* no partner") as record:
        pairs, orphans = find_pairs(tmp_path)
    assert len(record) == 1 and "only cut-out ü.png" in str(record[0].message)
    assert "only photo.jpg" in str(record[0].message)
    assert sorted(unicodedata.normalize("NFC", p.stem) for p, _ in pairs) == sorted(stems)
    assert sorted(p.name for p in orphans) == ["only cut-out ü.png", "only photo.jpg"]
    assert len(PairedImageDataset(pairs, image_size=32)) == len(stems)


def test_loaders_build_from_a_folder_with_bad_files_and_orphans(tmp_path):
    bg, no_bg = tmp_path / "photos", tmp_path / "cutouts"
    for i in range(10):
        bg.mkdir(exist_ok=True), no_bg.mkdir(exist_ok=True)
        quadrants().save(bg / f"{i}.jpg")
        _cutout(no_bg / f"{i}.png")
    (no_bg / "3.png").write_bytes(b"")  # empty cut-out
    make(bg, "text_named_png")
    with pytest.warns(UserWarning):
        loaders = make_loaders(bg_path=bg, no_bg_path=no_bg, image_size=32, batch_size=4)
    assert sum(len(loader.dataset) for loader in loaders) == 9


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize("case", list(MAKERS))
def test_cli_predict_writes_or_prints_one_error_line(case, tmp_path, checkpoint, capsys):
    source = make(tmp_path / "in", case)
    before = snapshot(tmp_path / "in")
    out = tmp_path / "out" / "cut.png"
    code = main(["predict", str(source), str(out), "--checkpoint", str(checkpoint), "--device", "cpu"])
    captured = capsys.readouterr()
    if case in REFUSED:
        assert code == 2 and not out.exists()
        assert captured.err.startswith(f"error: {source}: ") and captured.err.count("\n") == 1
    else:
        assert code == 0 and out.is_file() and captured.err == ""
    assert snapshot(tmp_path / "in") == before


def test_cli_shows_one_error_line_and_no_traceback_for_a_bad_picture(tmp_path, checkpoint):
    bad = make(tmp_path, "text_named_png")
    command = [sys.executable, "-m", "bgremove_utils", "predict", str(bad), str(tmp_path / "out.png")]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*command, "--checkpoint", str(checkpoint)], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: {bad}: not a picture") and done.stderr.count("\n") == 1


def test_cli_folder_export_goes_on_past_bad_files_then_exits_1(tmp_path, checkpoint, capsys):
    for case in ("truncated_jpeg", "empty", "spaces_non_ascii", "exif_rotated"):
        make(tmp_path / "many", case)
    with pytest.raises(SystemExit) as info:
        main(["predict", str(tmp_path / "many"), str(tmp_path / "out"), "--checkpoint", str(checkpoint)])
    assert info.value.code == 1
    printed = capsys.readouterr()
    assert printed.out.startswith("2 cut-out(s) written, 2 file(s) failed") and "Traceback" not in printed.err
    assert "empty.png" in printed.out and "cut_short_jpeg.jpg" in printed.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["exif.png", "my phöto ü 日本.png"]


# ---------------------------------------------------------------- configuration


def test_batch_larger_than_the_training_pairs_fails_before_any_picture_is_decoded(tmp_path, monkeypatch, capsys):
    root = make_sample(tmp_path / "sample", n_pairs=12, size=32)  # 9 or 10 training pairs

    def must_not_decode(*args, **kwargs):
        raise AssertionError("a picture was decoded")

    monkeypatch.setattr(data, "load_pair", must_not_decode)
    says = r"batch_size=16: larger than the \d+ training pair\(s\) in .*sample; use batch_size=\d+ or less"
    with pytest.raises(ConfigError, match=says) as info:
        train(profile="quick", data_root=str(root), checkpoint_dir=str(tmp_path / "ckpt"), progress=False)
    assert info.value.__cause__ is None
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt")]
    assert main(["train", "--profile", "quick", "--data-root", str(root), "--batch-size", "64", *ckpt]) == 2
    assert capsys.readouterr().err.startswith("error: batch_size=64: larger than the")
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize(
    ("argument", "says"),
    [
        (["--epochs", "-1"], "epochs=-1: must be a whole number of at least 1"),
        (["--image-size", "100"], "image_size=100: must be divisible by 16"),
        (["--device", "cuda:7"], "device='cuda:7': no such CUDA GPU here"),
        (["--batch-size", "0"], "batch_size=0: must be a whole number of at least 1"),
    ],
)
def test_cli_nonsense_training_arguments_fail_before_any_data_is_loaded(argument, says, tmp_path, capsys):
    missing = tmp_path / "no_data_here"  # never looked at: the arguments are checked first
    where = ["--data-root", str(missing), "--checkpoint-dir", str(tmp_path)]
    code = main(["train", "--profile", "quick", *where, *argument])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {says}") and err.count("\n") == 1
