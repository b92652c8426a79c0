"""Interrupted training: a run killed at any moment (even while a checkpoint is being written)
resumes from its last checkpoint at the right epoch; Ctrl-C stops cleanly; a corrupt or foreign
checkpoint is one clear error naming the file.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bgremove_utils.cli import main
from bgremove_utils.errors import CheckpointError
from bgremove_utils.models import GModel
from bgremove_utils.models.checkpoint import load_checkpoint, load_generator
from bgremove_utils.training import loop
from bgremove_utils.training.loop import train

pytestmark = pytest.mark.usefixtures("one_thread")


def epochs_of(history: list[dict]) -> list[int]:
    return [row["epoch"] for row in history]


# ---------------------------------------------------------------- SIGKILL at any moment

EPOCHS = 6
SEED = 20240611  # the "random" kill times, reproducible


def command(sample: Path, ckpt: Path, resume: bool) -> list[str]:
    args = [sys.executable, "-m", "bgremove_utils", "train", "--profile", "quick", "--epochs", str(EPOCHS)]
    args += ["--image-size", "32", "--checkpoint-dir", str(ckpt), "--data-root", str(sample), "--no-progress"]
    return args + ["--resume"] * resume


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # a tiny model: one thread is fastest, also on a busy machine


def kill_when(sample: Path, ckpt: Path, log: Path, condition, delay: float = 0.0, timeout: float = 120.0) -> None:
    """Start `train --resume`, and SIGKILL it `delay` seconds after `condition()` first holds
    (polled every millisecond)."""
    with open(log, "a") as out:
        process = subprocess.Popen(command(sample, ckpt, True), stdout=out, stderr=subprocess.STDOUT, env=ENV)
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before it could be killed:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"timed out:\n{log.read_text()}"
        time.sleep(0.001)
    time.sleep(delay)
    assert process.poll() is None, f"the run ended before it could be killed:\n{log.read_text()}"
    process.send_signal(signal.SIGKILL)
    process.wait()


def temporaries(ckpt: Path) -> set[str]:
    return {p.name for p in ckpt.glob(".last.pt.*.tmp")}


def test_training_killed_at_any_moment_resumes_at_the_right_epoch(tiny_sample, tmp_path):
    ckpt, log, rng = tmp_path / "ckpt", tmp_path / "train.log", random.Random(SEED)
    kept = {}  # epoch -> its history row as first saved: a resumed run must not train it again

    def checkpointed_epoch(when: str) -> int:
        """The epoch of last.pt, which must load whenever the run was killed (0: none yet)."""
        if not (ckpt / "last.pt").exists():
            return 0
        state = load_checkpoint(ckpt / "last.pt")
        assert epochs_of(state["history"]) == list(range(1, state["epoch"] + 1)), when
        for row in state["history"]:
            assert kept.setdefault(row["epoch"], row) == row, f"{when}: epoch {row['epoch']} was trained again"
        return state["epoch"]

    # 1. at a random moment after the first checkpoint (training, validating, or saving)
    kill_when(tiny_sample, ckpt, log, lambda: (ckpt / "last.pt").exists(), delay=rng.uniform(0.0, 1.0))
    assert checkpointed_epoch("killed at a random moment") >= 1

    # 2. while last.pt's replacement is being written: the moment its temporary file appears
    for _attempt in range(3):
        before, epoch = temporaries(ckpt), checkpointed_epoch("before a kill while writing")
        kill_when(tiny_sample, ckpt, log, lambda before=before: temporaries(ckpt) - before)
        if temporaries(ckpt) - before:  # the half-written file is still there: killed mid-write
            assert checkpointed_epoch("killed while writing a checkpoint") == epoch
            break
    else:
        pytest.fail("three tries, never killed while a checkpoint was being written")

    # 3. at a random moment while starting (importing torch, decoding the data, loading last.pt)
    epoch = checkpointed_epoch("before a kill while starting")
    kill_when(tiny_sample, ckpt, log, lambda: True, delay=rng.uniform(0.2, 1.5))
    assert checkpointed_epoch("killed while starting") >= epoch  # (a very fast machine may have saved one)

    # 4. restarted once more, it runs to the end: every epoch once, in order, nothing left over
    done = subprocess.run(command(tiny_sample, ckpt, True), capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert checkpointed_epoch("finished") == EPOCHS
    assert epochs_of(json.loads((ckpt / "history.json").read_text())) == list(range(1, EPOCHS + 1))
    assert temporaries(ckpt) == set()  # the killed runs' temporary files went with the next save


def test_temporary_files_of_a_killed_save_are_ignored_then_removed(tmp_path):
    (tmp_path / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # what SIGKILL mid-write leaves
    (tmp_path / ".best.pt.other.tmp").write_bytes(b"another checkpoint's")
    loop.save_checkpoint({"generator": {}, "config": {}, "epoch": 1}, tmp_path / "last.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".best.pt.other.tmp", "last.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


# ---------------------------------------------------------------- Ctrl-C in a notebook


def interrupt_at(monkeypatch, step: int) -> None:
    """Ctrl-C at the `step`-th training step (counted from 1), as the kernel's interrupt raises it."""
    real, calls = loop.train_step, []

    def step_or_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", step_or_interrupt)


def test_ctrl_c_in_epoch_2_keeps_epoch_1_and_returns_its_history(tmp_path, tiny_loaders, monkeypatch, capsys, tiny_run):
    interrupt_at(monkeypatch, len(tiny_loaders.train) + 2)  # the second step of epoch 2
    history = train(loaders=tiny_loaders, **tiny_run(tmp_path))
    assert epochs_of(history) == [1]
    assert "Training interrupted after 1 epoch(s)" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert json.loads((tmp_path / "history.json").read_text()) == history
    monkeypatch.undo()
    assert epochs_of(train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path))) == [1, 2, 3]


def test_ctrl_c_while_a_checkpoint_is_written_keeps_the_previous_one(tmp_path, tiny_loaders, monkeypatch, tiny_run):
    real_save = torch.save

    def save_half_then_interrupt(state, handle, *args, **kwargs):
        if state["epoch"] == 2:  # epoch 2's first save: last.pt
            handle.write(b"PK\x03\x04 half a checkpoint")
            raise KeyboardInterrupt
        return real_save(state, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_half_then_interrupt)
    history = train(loaders=tiny_loaders, **tiny_run(tmp_path))
    assert epochs_of(history)[0] == 1
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert not list(tmp_path.glob(".*.tmp"))  # the half-written file was removed
    monkeypatch.undo()
    assert epochs_of(train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path))) == [1, 2, 3]


# ---------------------------------------------------------------- corrupt or foreign checkpoints


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory, tiny_loaders, tiny_run) -> Path:
    folder = tmp_path_factory.mktemp("good")
    train(loaders=tiny_loaders, **tiny_run(folder, epochs=1))
    return folder / "last.pt"


def corrupt(kind: str, good: Path, path: Path) -> Path:
    data = good.read_bytes()
    path.write_bytes(
        {
            "empty": b"",
            "truncated": data[: len(data) // 2],
            "flipped_bytes": data[:1000] + bytes(b ^ 0xFF for b in data[1000:3000]) + data[3000:],
            "text": b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 7210491\n",  # a Git LFS pointer
        }[kind]
    )
    return path


@pytest.mark.parametrize("kind", ["empty", "truncated", "flipped_bytes", "text"])
def test_corrupt_checkpoint_is_one_clear_error_naming_the_file(
    kind, good_checkpoint, tmp_path, tiny_loaders, capsys, tiny_run
):
    path = corrupt(kind, good_checkpoint, tmp_path / "last.pt")
    for load in (load_checkpoint, load_generator):
        with pytest.raises(CheckpointError, match="not a readable checkpoint.*delete it and train again") as info:
            load(path)
        assert str(path) in str(info.value) and info.value.__cause__ is None
    with pytest.raises(CheckpointError, match="last.pt: not a readable checkpoint"):
        train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path))
    Image.new("RGB", (40, 30)).save(tmp_path / "photo.jpg")
    assert main(["predict", str(tmp_path / "photo.jpg"), str(tmp_path / "out.png"), "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: not a readable checkpoint") and err.count("\n") == 1


def foreign(kind: str, good: Path, path: Path) -> Path:
    state = load_checkpoint(good)
    other = GModel(base_channels=16, depth=3, max_channels=64).state_dict()
    torch.save(
        {
            "another_model": {"generator": other, "config": state["config"]},  # weights of another shape
            "no_config": {"generator": state["generator"]},
            "config_without_sizes": {"generator": state["generator"], "config": {"lr_g": 1e-4}},
            "a_state_dict": state["generator"],  # someone's torch.save(model.state_dict())
        }[kind],
        path,
    )
    return path


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("another_model", "another model configuration .*size mismatch"),
        ("no_config", "not a bgremove_utils checkpoint"),
        ("config_without_sizes", "lacks a usable model setting"),
        ("a_state_dict", "not a bgremove_utils checkpoint"),
    ],
)
def test_checkpoint_of_another_model_or_program_is_one_clear_error(kind, says, good_checkpoint, tmp_path):
    path = foreign(kind, good_checkpoint, tmp_path / "theirs.pt")
    with pytest.raises(CheckpointError, match=says) as info:
        load_generator(path)
    assert str(path) in str(info.value)


class _RunsCode:
    """An object whose unpickling calls a function of its choosing: here, making a folder."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (str(self.marker),)


def test_a_checkpoint_whose_pickle_would_run_code_is_refused_and_runs_nothing(good_checkpoint, tmp_path, capsys):
    state = load_checkpoint(good_checkpoint)
    path, marker = tmp_path / "shared.pt", tmp_path / "code_ran"
    torch.save({**state, "extra": _RunsCode(marker)}, path)  # a file a learner was sent, or uploaded in Colab
    for load in (load_checkpoint, load_generator):
        with pytest.raises(CheckpointError, match=r"shared.pt: refused, .*could run code") as info:
            load(path)
        assert info.value.__cause__ is None
    Image.new("RGB", (40, 30)).save(tmp_path / "photo.jpg")
    assert main(["predict", str(tmp_path / "photo.jpg"), str(tmp_path / "out.png"), "--checkpoint", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not marker.exists()


def test_checkpoints_hold_only_tensors_and_plain_types_and_older_ones_with_numpy_still_load(good_checkpoint, tmp_path):
    state = torch.load(good_checkpoint, weights_only=True)  # torch's safe loading, nothing allowed beside it
    assert state["epoch"] == 1 and state["scaler_g"] == {}  # float32 here: nothing to scale
    older = {**state, "rng": {**state["rng"], "numpy": np.random.get_state()}}  # numpy's state as an array
    torch.save(older, tmp_path / "older.pt")
    assert load_checkpoint(tmp_path / "older.pt")["rng"]["numpy"][0] == "MT19937"
    legacy = io.BytesIO()  # torch's legacy format, whose pickle names numpy's functions as numpy 1 does
    torch.save(older, legacy, _use_new_zipfile_serialization=False)
    (tmp_path / "numpy1.pt").write_bytes(legacy.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert load_checkpoint(tmp_path / "numpy1.pt")["rng"]["numpy"][0] == "MT19937"
