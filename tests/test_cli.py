"""The command line, run in this process (`cli.main`, what `python -m bgremove_utils` calls: the
entry point itself is checked by tests/test_packaging.py): its output and exit code."""

import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
from PIL import Image

from bgremove_utils.cli import main
from bgremove_utils.data.real import real_half
from bgremove_utils.paths import project_root


def _cli(*args, env=None) -> SimpleNamespace:
    """`python -m bgremove_utils ARGS` in this process: (returncode, stdout, stderr)."""
    out, err, saved = io.StringIO(), io.StringIO(), {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(arg) for arg in args])
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def _offline_course(home):
    """A clone's data folder as a learner has it offline: the shipped real folders, no download."""
    for name in ("real-objects", "real-val", "real-train"):
        (home / "data" / name).mkdir(parents=True)
        for item in (project_root() / "data" / name).iterdir():
            if item.name in ("inputs", "targets") and name != "real-train":
                (home / "data" / name / item.name).mkdir()
                for picture in item.iterdir():
                    if picture.stem in _shipped(name):
                        (home / "data" / name / item.name / picture.name).symlink_to(picture)
            elif item.is_file():
                shutil.copy(item, home / "data" / name / item.name)


def _shipped(name: str) -> set[str]:
    with open(project_root() / "data" / name / "manifest.csv", newline="") as handle:
        return {row["stem"] for row in csv.DictReader(handle) if row["shipped"] == "yes"}


def test_demo_trains_on_the_shipped_real_pairs_scores_and_cuts_out_real_photographs(tmp_path, sample_root):
    _offline_course(tmp_path)
    shutil.copytree(sample_root, tmp_path / "data" / "sample")  # made already: the demo finds it and goes on
    result = subprocess.run(  # the one command run as a learner runs it, in a process of its own
        [sys.executable, "-m", "bgremove_utils", "demo", "--profile", "quick", "--epochs", "1"],
        capture_output=True,
        text=True,
        env={**os.environ, "BGREMOVE_HOME": str(tmp_path)},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "shipped real video frames and the drawn sample" in result.stdout
    assert "python -m bgremove_utils download real" in result.stdout  # how to get the rest
    demo = tmp_path / "outputs" / "demo"
    cutouts = sorted((demo / "cutouts").glob("*.png"))
    report = [stem for stem in _shipped("real-val") if real_half(stem) == "report"]
    assert sorted(path.stem for path in cutouts) == sorted(report)  # every real test photograph of the report half
    first = Image.open(cutouts[0])
    assert first.mode == "RGBA" and first.size == (400, 225)  # at the photograph's own size
    metrics = json.loads((demo / "metrics.json").read_text())
    assert {"model", "baseline"} <= set(metrics["real_report_half"]) and {"model", "baseline"} <= set(metrics["test"])
    assert 0 <= metrics["real_report_half"]["model"]["iou"] <= 1 and 0 <= metrics["new_photos"]["model"]["sad"]
    assert (demo / "predict_and_compare.png").stat().st_size > 10_000
    assert (tmp_path / "checkpoints" / "best.pt").is_file()
    for path in (demo / "cutouts", demo / "predict_and_compare.png", tmp_path / "checkpoints"):
        assert str(path) in result.stdout


def _table_rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    """The rows of evaluate's table: (split, who) -> the numbers."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("IoU")) + 1
    return {tuple(line.split()[:2]): line.split()[2:] for line in lines[start:] if line.strip()}


def test_evaluate_prints_the_model_beside_the_baseline_on_its_splits_and_the_real_photographs(trained_run, sample_root):
    result = _cli("evaluate", "--checkpoint", trained_run[0] / "best.pt", "--data-root", sample_root)
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout)
    splits = ("test", "new_photos", "real_report_half")  # the real ones: the course's, its report half
    assert set(rows) == {(split, who) for split in splits for who in ("model", "baseline")}
    assert float(rows["test", "model"][0]) > float(rows["test", "baseline"][0])  # IoU, the first number
    assert all(len(values) == 8 for values in rows.values())  # IoU, MAE, PSNR, SAD, MSE, Grad, Conn, Holes


def test_evaluate_scores_a_folder_of_real_photos_with_grey_masks_in_the_same_table(trained_run, sample_root, tmp_path):
    for folder in ("inputs", "targets"):
        (tmp_path / folder).mkdir()
    for i in range(4):
        photo = np.full((48, 64, 3), 40 * i, np.uint8)
        photo[10:40, 20:50] = (220, 60, 30)
        Image.fromarray(photo).save(tmp_path / "inputs" / f"photo_{i}.jpg")
        mask = np.zeros((48, 64), np.uint8)
        mask[10:40, 20:50] = 255
        Image.fromarray(mask, "L").save(tmp_path / "targets" / f"photo_{i}.png")
    args = ("--checkpoint", trained_run[0] / "best.pt", "--data-root", sample_root, "--real", tmp_path)
    result = _cli("evaluate", *args)  # a folder of one's own: all of it, unless a half is asked for
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout)
    assert {("real_all", "model"), ("real_all", "baseline"), ("test", "model")} <= set(rows)
    assert "real_all: 4 pictures" in result.stdout


def test_predict_cuts_out_a_file(trained_run, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(photo)
    result = _cli("predict", photo, tmp_path / "cut.png", "--checkpoint", trained_run[0] / "best.pt")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "cut.png").size == (70, 50)


def test_a_missing_checkpoint_is_one_clear_line_not_a_traceback(tmp_path):
    Image.new("RGB", (20, 20)).save(tmp_path / "x.jpg")
    result = _cli("predict", tmp_path / "x.jpg", tmp_path / "y.png", "--checkpoint", tmp_path / "none.pt")
    assert result.returncode != 0
    assert "none.pt" in result.stderr and "train" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_scores_every_picture_of_a_folder_smaller_than_a_batch_once(tmp_path):
    from bgremove_utils.data.dataset import split_loader
    from bgremove_utils.data.pairs import find_splits
    from bgremove_utils.models.checkpoint import save_checkpoint
    from bgremove_utils.models.networks import GModel
    from bgremove_utils.settings import make_config

    for folder in ("with_bg", "no_bg"):
        (tmp_path / "pairs" / folder).mkdir(parents=True)
    for i in range(24):  # fewer training pairs than evaluate's batch of 32
        Image.new("RGB", (40, 40), (10 * i, 90, 30)).save(tmp_path / "pairs" / "with_bg" / f"p{i}.png")
        alpha = np.zeros((40, 40), np.uint8)
        alpha[10 : 20 + i % 10, 8:30] = 255
        Image.fromarray(np.dstack([np.full((40, 40, 3), 90, np.uint8), alpha]), "RGBA").save(
            tmp_path / "pairs" / "no_bg" / f"p{i}.png"
        )
    config = make_config("quick", image_size=32, base_channels=8, depth=3)
    save_checkpoint({"generator": GModel(config.g).state_dict(), "config": config.to_dict()}, tmp_path / "g.pt")
    n_train = len(find_splits(tmp_path / "pairs")["train"])
    loader = split_loader(tmp_path / "pairs", 32, "train")
    assert not loader.drop_last and sum(len(photo) for photo, _ in loader) == n_train  # each picture once
    result = _cli("evaluate", "--checkpoint", tmp_path / "g.pt", "--data-root", tmp_path / "pairs", "--split", "train")
    assert result.returncode == 0, result.stderr
    assert f"train: {n_train} pictures" in result.stdout  # each once: none dropped, no training batch needed
    assert "new_photos" not in result.stdout and "real_report_half" in result.stdout  # not trained on the sample
