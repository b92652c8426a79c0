"""Training that fails loudly and safely: a run that diverges stops within the epoch and keeps its
sane checkpoints; a second run on the same checkpoint folder is refused, naming the first; a full
disk or a read-only folder is one line naming the file, and the last complete checkpoint loads.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bgremove_utils import files
from bgremove_utils.cli import main
from bgremove_utils.course.notebook import ensure_checkpoint
from bgremove_utils.data.dataset import make_loaders
from bgremove_utils.errors import BgRemoveError, CheckpointError, DivergenceError
from bgremove_utils.models.checkpoint import load_checkpoint, save_checkpoint
from bgremove_utils.settings import make_config
from bgremove_utils.training import lock as lock_module
from bgremove_utils.training import loop
from bgremove_utils.training.distributed import Process
from bgremove_utils.training.health import DIVERGED_STEPS, DivergenceWatch, diverged
from bgremove_utils.training.lock import LOCK_FILE, STALE_AFTER_S, acquire, release, run_lock
from bgremove_utils.training.loop import READ_EVERY, train

pytestmark = pytest.mark.usefixtures("one_thread")

HUGE = {"lr_g": 1e6, "lr_d": 1e6}  # a mistyped learning rate: the losses reach 1e13 in a few steps
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def epochs_of(history: list[dict]) -> list[int]:
    return [row["epoch"] for row in history]


def one_line(err: str) -> bool:
    return err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def cli_train(sample: Path, ckpt: Path, *more: str) -> list[str]:
    """The CLI's train on a tiny model of `sample`, as a list of arguments for `main`."""
    tiny = ["--image-size", "32", "--base-channels", "8", "--d-channels", "8", "--depth", "3", "--sample-every", "0"]
    where = ["--data-root", str(sample), "--checkpoint-dir", str(ckpt), "--no-progress"]
    return ["train", "--profile", "quick", "--epochs", "2", "--batch-size", "8", *tiny, *where, *more]


# ---------------------------------------------------------------- divergence


def test_a_run_that_diverges_stops_within_the_epoch_and_keeps_its_sane_checkpoints(
    tmp_path, tiny_sample, tiny_run, monkeypatch
):
    tiny_loaders = make_loaders(tiny_sample, image_size=32, batch_size=2)  # 16 steps an epoch: room to stop early
    train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))
    best = load_checkpoint(tmp_path / "best.pt")["generator"]
    steps, real_step = [], loop.train_step
    monkeypatch.setattr(loop, "train_step", lambda *a, **k: steps.append(1) or real_step(*a, **k))
    with pytest.raises(DivergenceError) as info:
        train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path, **HUGE))
    monkeypatch.undo()
    says = str(info.value)
    assert says.startswith("training diverged in epoch 2, step ") and "\n" not in says
    assert "G's loss is" in says or "D's loss is" in says
    assert "lower lr_g / lr_d (--lr-g / --lr-d, now 1e+06 / 1e+06)" in says
    assert f"--resume with lower rates from the last good checkpoint, {tmp_path / 'last.pt'} (epoch 1)" in says
    # stopped within the epoch, at the first reading of the losses (every READ_EVERY steps: a reading
    # makes a GPU wait), which names the step: a step's losses are measured before its update, so the
    # first step of the huge rates may still look sane (it does with D's spectral norm)
    assert DIVERGED_STEPS <= len(steps) <= READ_EVERY < len(tiny_loaders.train)
    assert DIVERGED_STEPS <= int(re.search(r"step (\d+) of", says)[1]) <= DIVERGED_STEPS + 1
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    for key, value in load_checkpoint(tmp_path / "best.pt")["generator"].items():
        torch.testing.assert_close(value, best[key])  # best.pt never replaced by the diverged model
    assert epochs_of(json.loads((tmp_path / "history.json").read_text())) == [1]
    assert not (tmp_path / LOCK_FILE).exists()  # released after the error
    assert epochs_of(train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path, epochs=2))) == [1, 2]


def test_a_run_that_diverges_from_its_first_steps_writes_no_checkpoint(tmp_path, tiny_loaders, tiny_run):
    with pytest.raises(DivergenceError, match=r"in epoch 1, step \d+ of \d+: .*and train again; no checkpoint was"):
        train(loaders=tiny_loaders, **tiny_run(tmp_path / "ckpt", **HUGE))
    assert not (tmp_path / "ckpt").exists()  # nothing written, not even the lock or an empty folder


def test_the_cli_stops_a_diverged_run_with_one_line_and_exit_code_2(tiny_sample, tmp_path, capsys):
    code = main(cli_train(tiny_sample, tmp_path / "ckpt", "--lr-g", "1e6", "--lr-d", "1e6"))
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and err.startswith("error: training diverged in epoch 1, step ")
    assert not (tmp_path / "ckpt" / "best.pt").exists()


def stats(g: float, d: float = 0.7) -> dict[str, float]:
    return {"loss_g": g, "loss_d": d}


def test_a_few_non_finite_steps_are_not_divergence_but_many_in_a_row_are():
    config = make_config("quick")
    watch = DivergenceWatch(config, [])
    # Mixed precision: on CUDA float16 the GradScaler skips a step whose gradients overflowed and lowers
    # its scale (the loss is finite); a forward pass that overflows now and then gives one non-finite loss.
    for g in [300.0, 250.0, float("inf"), 240.0, float("nan"), float("nan"), 230.0, 220.0]:
        assert watch.check(stats(g)) is None
    for _ in range(DIVERGED_STEPS - 1):
        assert watch.check(stats(float("nan"))) is None
    assert watch.check(stats(float("nan"))) == "G's loss is nan"
    watch = DivergenceWatch(config, [])  # exploding: far past the first steps' level, steps in a row
    assert [watch.check(stats(g)) for g in (300.0, 3e5, 1e9)] == [None, None, None]
    assert watch.check(stats(4e13, 1e12)) == "G's loss is 4e+13, it began at 300"
    resumed = DivergenceWatch(config, [{"epoch": 1, **stats(200.0, 0.7)}])  # the first level: the history's
    assert [resumed.check(stats(50.0, d)) for d in (2e3, 3e3, 5e3)][-1] == "D's loss is 5e+03, it began at 0.7"


def test_a_history_says_whether_its_run_diverged():
    config = make_config("quick")
    sane = [{"epoch": 1, **stats(300.0, 0.7)}, {"epoch": 2, **stats(120.0, 1.2)}, {"epoch": 3, **stats(90.0, 0.4)}]
    assert diverged(sane, config) is None
    # The run: G's and D's loss 2.4e13 from epoch 1 on, best.pt written from the diverged model
    assert diverged([{"epoch": 1, **stats(2.4e13, 2.4e13)}], config).startswith("epoch 1: G's loss is 2.4e+13")
    assert diverged([*sane, {"epoch": 4, **stats(float("nan"))}], config) == "epoch 4: G's loss is nan"
    watch = DivergenceWatch(config, sane)  # an epoch's mean, out of bounds without 3 such steps in a row
    assert watch.check_epoch({"epoch": 4, **stats(80.0, 0.5)}) is None
    assert watch.check_epoch({"epoch": 4, **stats(80.0, 900.0)}) == "epoch 4: D's loss is 900, it began at 0.7"


def test_ensure_checkpoint_refuses_a_checkpoint_of_a_diverged_run(tmp_path, tiny_loaders, tiny_run, capsys):
    train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))
    assert ensure_checkpoint(tmp_path) == tmp_path / "best.pt" and "Using " in capsys.readouterr().out
    state = load_checkpoint(tmp_path / "best.pt")  # as written before train() stopped such runs
    state["history"] = [{**row, "loss_g": 2.4e13, "loss_d": 2.4e13} for row in state["history"]]
    save_checkpoint(state, tmp_path / "best.pt")
    with pytest.raises(CheckpointError) as info:
        ensure_checkpoint(tmp_path)
    says = str(info.value)
    assert says.startswith(f"{tmp_path / 'best.pt'}: the run that wrote it diverged (epoch 1: G's loss is 2.4e+13")
    assert "lower lr_g / lr_d" in says and "\n" not in says


# ---------------------------------------------------------------- one run per checkpoint folder

HOLD = """
import sys, time
from pathlib import Path
from bgremove_utils.training.lock import acquire
acquire(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_run_on_the_same_folder_is_refused_naming_the_first(tmp_path, tiny_loaders, tiny_run, tiny_sample):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline() == "held\n"
        start = time.monotonic()
        with pytest.raises(CheckpointError) as info:
            train(loaders=tiny_loaders, **tiny_run(tmp_path))
        assert time.monotonic() - start < 5  # at once, not after an epoch
        says = str(info.value)
        assert says.startswith(f"{tmp_path}: another training run is using this checkpoint folder (pid {holder.pid} ")
        assert f"on {socket.gethostname()}, since {time.strftime('%Y-%m-%d')}" in says
        assert "wait for it to end, or train with another --checkpoint-dir" in says and "\n" not in says
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE]  # nothing of ours written
    finally:
        holder.kill()
        holder.wait()
    assert epochs_of(train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))) == [1]  # its run is gone: taken over
    assert not (tmp_path / LOCK_FILE).exists()


def test_the_cli_started_beside_a_running_training_exits_2_with_one_line(tmp_path, tiny_sample):
    mine = acquire(tmp_path)  # this process trains there
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bgremove_utils", *cli_train(tiny_sample, tmp_path)],
            capture_output=True,
            text=True,
            env=ENV,
        )
    finally:
        release(tmp_path, mine)
    assert done.returncode == 2 and one_line(done.stderr), done.stderr
    assert f"another training run is using this checkpoint folder (pid {os.getpid()} " in done.stderr
    assert not (tmp_path / "last.pt").exists()


def test_the_lock_is_released_after_ctrl_c_and_after_an_error(tmp_path, tiny_loaders, tiny_run, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train_step", interrupt)
    assert train(loaders=tiny_loaders, **tiny_run(tmp_path)) == []
    assert not (tmp_path / LOCK_FILE).exists()
    monkeypatch.setattr(loop, "train_step", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train(loaders=tiny_loaders, **tiny_run(tmp_path))
    assert not (tmp_path / LOCK_FILE).exists()


def lock_of(pid: int, host: str) -> dict:
    return {"pid": pid, "host": host, "since": time.time() - 60, "token": "theirs", "command": "train"}


def test_a_stale_lock_is_taken_over_and_another_hosts_once_its_heartbeat_stopped(tmp_path, capsys):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = tmp_path / LOCK_FILE
    lock.write_text(json.dumps(lock_of(int(gone.stdout), socket.gethostname())))
    mine = acquire(tmp_path)  # a run killed with SIGKILL left it: its process is gone
    assert mine["pid"] == os.getpid() and "its process is gone" in capsys.readouterr().out
    release(tmp_path, mine)
    lock.write_text(json.dumps(lock_of(int(gone.stdout), "another-machine")))
    with pytest.raises(CheckpointError, match=f"pid {gone.stdout.strip()} on another-machine"):
        acquire(tmp_path)  # another machine's run, touched a moment ago: alive, as far as anyone can tell
    silent = time.time() - STALE_AFTER_S - 60
    os.utime(lock, (silent, silent))  # a Colab runtime that died: its lock in Drive, untouched for 11 minutes
    mine = acquire(tmp_path)
    assert "on another-machine) is gone, untouched for 11 minutes" in capsys.readouterr().out
    release(tmp_path, mine)


def test_a_running_training_touches_its_lock_so_that_other_machines_see_it_alive(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_module, "HEARTBEAT_S", 0.05)
    with run_lock(tmp_path, Process(torch.device("cpu"))):
        lock = tmp_path / LOCK_FILE
        os.utime(lock, (time.time() - 3600, time.time() - 3600))
        deadline = time.time() + 10
        while time.time() - lock.stat().st_mtime > 60 and time.time() < deadline:
            time.sleep(0.05)
        assert time.time() - lock.stat().st_mtime < 60  # touched again by the run's heartbeat
        with pytest.raises(CheckpointError, match="another training run is using this checkpoint folder"):
            acquire(tmp_path)


def test_under_torchrun_only_rank_0_takes_the_lock(tmp_path):
    with run_lock(tmp_path / "ckpt", Process(torch.device("cpu"), rank=1, world_size=2)):
        assert not (tmp_path / "ckpt" / LOCK_FILE).exists()
    with run_lock(tmp_path / "ckpt", Process(torch.device("cpu"))):
        assert json.loads((tmp_path / "ckpt" / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / "ckpt").exists()  # released, and the empty folder it made removed


# ---------------------------------------------------------------- a full disk, a read-only folder


def test_importing_the_package_leaves_the_process_umask_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0o022)
    importlib.reload(files)  # as at import: reading the umask by setting it to 0 left a window for other threads
    assert calls == []


def test_an_atomic_write_gets_an_ordinary_new_files_permissions(tmp_path):
    mask = os.umask(0o027)
    try:
        with files.atomic_write(tmp_path / "a.bin") as handle:
            handle.write(b"x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640  # 0o666 less this umask


def test_a_synced_atomic_write_flushes_the_file_then_its_folders_new_entry(tmp_path, monkeypatch):
    synced, real_fsync = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)) or real_fsync(fd))
    with files.atomic_write(tmp_path / "a.bin", sync=True) as handle:
        handle.write(b"x")
    assert synced == [False, True]  # the file's data, then the folder's entry of its new name
    assert (tmp_path / "a.bin").read_bytes() == b"x"


UNEXPECTED_POS = "[enforce fail at inline_container.cc:672] . unexpected pos 4895616 vs 4895504"


def fill_disk_at_epoch(monkeypatch, epoch: int, error: BaseException) -> None:
    """torch.save writes part of epoch `epoch`'s last.pt, then fails with `error`, as on a full disk."""
    real_save = torch.save

    def save(state, handle, *args, **kwargs):
        if isinstance(state, dict) and state.get("epoch") == epoch:
            handle.write(b"PK\x03\x04 part of a checkpoint")
            raise error
        return real_save(state, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize(
    "error", [OSError(errno.ENOSPC, "No space left on device"), RuntimeError(UNEXPECTED_POS)], ids=["enospc", "torch"]
)
def test_a_full_disk_is_one_line_naming_the_file_and_the_last_checkpoint_loads(
    error, tmp_path, tiny_loaders, tiny_run, monkeypatch
):
    fill_disk_at_epoch(monkeypatch, 2, error)
    monkeypatch.setattr(files, "free_bytes", lambda folder: 1000)  # what a full disk has left
    with pytest.raises(CheckpointError) as info:
        train(loaders=tiny_loaders, **tiny_run(tmp_path))
    says, last = str(info.value), tmp_path / "last.pt"
    assert says.startswith(f"cannot write {last}: the disk is full (it needs about ") and "1 kB free)" in says
    assert f"; {last} (epoch 1) is the last complete checkpoint: once there is room, train again with --resume" in says
    assert "\n" not in says and info.value.__cause__ is None
    assert load_checkpoint(last)["epoch"] == 1 and load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / LOCK_FILE).exists()
    monkeypatch.undo()
    assert epochs_of(train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path))) == [1, 2, 3]


def test_the_cli_says_a_full_disk_in_one_line_with_exit_code_2(tiny_sample, tmp_path, monkeypatch, capsys):
    fill_disk_at_epoch(monkeypatch, 1, OSError(errno.ENOSPC, "No space left on device"))
    assert main(cli_train(tiny_sample, tmp_path)) == 2
    err = capsys.readouterr().err
    assert one_line(err) and "the disk is full" in err and "no checkpoint is complete yet" in err


def test_an_error_of_torch_save_that_is_not_the_disk_passes_unchanged(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something else went wrong")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(RuntimeError, match="something else went wrong") as info:
        save_checkpoint({"generator": {}, "config": {}}, tmp_path / "last.pt")
    assert not isinstance(info.value, BgRemoveError) and list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_written_is_refused_before_training(tmp_path, tiny_loaders, tiny_run, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(CheckpointError, match=r"cannot write in .*a_file/ckpt: .*choose another folder"):
        train(loaders=tiny_loaders, **tiny_run(tmp_path / "a_file" / "ckpt"))


@pytest.fixture
def mounted(tmp_path):
    """Mount a tmpfs of `size` with `options` at a new folder (root on Linux); skipped elsewhere."""
    points = []

    def mount(name: str, size: str, options: str = "") -> Path:
        point = tmp_path / name
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", str(point)])
        if done.returncode:
            pytest.skip("cannot mount a tmpfs here: the simulated full disk above covers it")
        points.append(point)
        return point

    yield mount
    for point in points:
        subprocess.run(["umount", str(point)], check=True)


def test_a_read_only_file_system_is_refused_before_training_with_one_line(mounted, tiny_sample, capsys):
    folder = mounted("ro", "1m", ",ro")
    assert main(cli_train(tiny_sample, folder)) == 2
    err = capsys.readouterr().err
    assert one_line(err) and err.startswith(f"error: cannot write in {folder}: the file system is read-only")


def test_a_real_disk_that_fills_up_keeps_the_last_checkpoint(mounted, tiny_loaders, tiny_run):
    folder = mounted("small", "8m")
    train(loaders=tiny_loaders, **tiny_run(folder, epochs=1))
    size = (folder / "last.pt").stat().st_size
    room = files.free_bytes(folder) - size // 2  # leave half a checkpoint free
    (folder / "filler").write_bytes(b"\0" * room)
    with pytest.raises(CheckpointError, match=r"the disk is full \(it needs about") as info:
        train(loaders=tiny_loaders, resume=True, **tiny_run(folder, epochs=2))
    assert f"{folder / 'last.pt'} (epoch 1) is the last complete checkpoint" in str(info.value)
    assert load_checkpoint(folder / "last.pt")["epoch"] == 1
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "filler", "history.json", "last.pt"]
