"""Training under torchrun with DistributedDataParallel: two CPU processes (gloo) on a small sample."""

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from PIL import Image

from bgremove_utils.data.dataset import make_loaders
from bgremove_utils.errors import CheckpointError
from bgremove_utils.evaluation.metrics import evaluate
from bgremove_utils.export.inference import process_and_generate
from bgremove_utils.models.checkpoint import load_checkpoint, load_generator
from bgremove_utils.settings import TrainConfig
from bgremove_utils.training import distributed
from bgremove_utils.training.gan import GAN
from bgremove_utils.training.loop import train
from bgremove_utils.training.losses import reconstruction_losses

REPOSITORY = Path(__file__).resolve().parents[1]
TORCHRUN_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _torchrun(root: Path, ckpt: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node=2 -m bgremove_utils train` on the CPU: 32 training pairs at 32 px,
    4 a batch, so each process takes 16 pairs in 4 steps and nothing is dropped."""
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--nproc_per_node=2", "--standalone", "-m", "bgremove_utils", "train"]
    command += ["--profile", "quick", "--image-size", "32", "--batch-size", "4", "--device", "cpu"]
    command += ["--data-root", str(root), "--checkpoint-dir", str(ckpt), "--no-progress", *args]
    clean = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**clean, **(env or {})})
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One epoch on two processes: (sample root, checkpoint folder, indices folder, the run)."""
    from bgremove_utils.data.sample import make_sample

    tmp = tmp_path_factory.mktemp("ddp")
    root = make_sample(tmp / "sample", n_pairs=40, size=64)  # 32 / 4 / 4 pairs
    result = _torchrun(root, tmp / "ckpt", "--epochs", "1", env={distributed.INDICES_ENV: str(tmp / "indices")})
    return root, tmp / "ckpt", tmp / "indices", result


def test_the_two_processes_train_on_disjoint_halves_of_the_training_split(ddp_run):
    _, _, indices, _ = ddp_run
    seen = [json.loads((indices / f"indices_rank{r}.jsonl").read_text())["indices"] for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 16
    assert not set(seen[0]) & set(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(range(32))


def test_the_checkpoint_loads_in_one_process_and_the_loss_went_down(ddp_run, tmp_path):
    root, ckpt, _, _ = ddp_run
    state = load_checkpoint(ckpt / "best.pt")
    assert not [k for k in [*state["generator"], *state["discriminator"]] if k.startswith("module.")]
    photo = next((root / "with_bg").iterdir())
    out = process_and_generate(photo, tmp_path / "cutout.png", generator=ckpt / "best.pt")
    assert Image.open(out).mode == "RGBA" and Image.open(out).size == Image.open(photo).size

    config = TrainConfig.from_dict(state["config"])
    loaders = make_loaders(root, image_size=32, batch_size=32, augment=False)

    @torch.no_grad()
    def loss(g) -> float:  # G's reconstruction loss over the training split
        return sum(sum(reconstruction_losses(g.logits(x), y).values()).item() for x, y in loaders.train)

    before = GAN.build(config, torch.device("cpu")).g.eval()  # the seeded start every process had
    assert loss(load_generator(ckpt / "best.pt")) < 0.95 * loss(before)


def test_validation_metrics_cover_the_whole_split_across_processes(ddp_run):
    root, ckpt, _, _ = ddp_run
    history = json.loads((ckpt / "history.json").read_text())
    loaders = make_loaders(root, image_size=32, batch_size=32, augment=False)
    g = load_generator(ckpt / "best.pt")
    g.predict = functools.partial(g.predict, mirror=False)  # validation asks G once, not with the mirror image
    alone = evaluate(g, loaders.val, baseline=False)["model"]
    assert history[0]["val_iou"] == pytest.approx(alone["iou"], abs=1e-3)
    assert history[0]["val_mae"] == pytest.approx(alone["mae"], abs=1e-4)


def test_only_rank_0_prints_and_writes(ddp_run):
    _, ckpt, _, result = ddp_run
    assert result.stdout.count("epoch 1: val IoU") == 1
    assert sorted(p.name for p in ckpt.iterdir()) == ["best.pt", "history.json", "last.pt", "samples"]


def test_resume_under_torchrun_carries_on_at_the_next_epoch(ddp_run, tmp_path):
    root, ckpt, _, _ = ddp_run
    first = json.loads((ckpt / "history.json").read_text())
    resumed = tmp_path / "ckpt"
    resumed.mkdir()
    (resumed / "last.pt").write_bytes((ckpt / "last.pt").read_bytes())
    _torchrun(root, resumed, "--epochs", "2", "--resume")
    history = json.loads((resumed / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2] and history[0] == first[0]
    assert load_checkpoint(resumed / "last.pt")["epoch"] == 2


@pytest.fixture
def one_thread():
    """In-process training on one thread: tiny models gain nothing from more, and lose much on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_training_without_torchrun_starts_no_process_group(tmp_path, tiny_sample, monkeypatch, one_thread, tiny_run):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    with distributed.process(torch.device("cpu")) as alone:
        assert not alone.ddp and alone.is_main and not dist.is_initialized()
    history = train(**tiny_run(tmp_path, data_root=str(tiny_sample), epochs=1, batch_size=8, sample_every=1))
    assert len(history) == 1 and not dist.is_initialized()


def test_a_one_process_group_trains_with_ddp_and_is_destroyed_even_on_error(
    tmp_path, tiny_sample, monkeypatch, one_thread, tiny_run
):
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    for name, value in {**env, "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(name, value)
    args = tiny_run(tmp_path, data_root=str(tiny_sample), epochs=1, batch_size=8, sample_every=1)
    history = train(**args)
    assert len(history) == 1 and not dist.is_initialized()
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    with pytest.raises(CheckpointError, match="base_channels"):
        train(resume=True, **{**args, "base_channels": 16})
    assert not dist.is_initialized()


TWO_RANKS_FROM_NOTHING = """
import json, os, sys, time
from bgremove_utils.data import course, sample
from bgremove_utils.training import loop

real = sample.make_sample

def make_sample():  # the course's default sample, smaller: the same code, the same folder
    start = time.time()
    root = real(n_pairs=40, size=32)
    with open(sys.argv[1], "a") as log:
        log.write(json.dumps({"rank": int(os.environ["RANK"]), "start": start, "end": time.time()}) + "\\n")
    return root

course.make_sample = make_sample
loop.train(profile="quick", epochs=1, image_size=32, batch_size=4, device="cpu", progress=False, sample_every=0)
"""


def test_two_ranks_from_an_empty_data_folder_make_the_sample_once_rank_0_first(tmp_path):
    script = tmp_path / "two_ranks.py"
    script.write_text(TWO_RANKS_FROM_NOTHING)
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--nproc_per_node=2", "--standalone", str(script), str(tmp_path / "calls.jsonl")]
    clean = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    home = tmp_path / "course"  # a clone offline: a few shipped video frames, no sample yet
    frames = REPOSITORY / "data" / "real-objects"
    for sub, suffix in (("inputs", ".jpg"), ("targets", ".png")):
        (home / "data" / "real-objects" / sub).mkdir(parents=True)
        for path in sorted((frames / sub).glob(f"*{suffix}"))[:24]:
            shutil.copy(path, home / "data" / "real-objects" / sub / path.name)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**clean, "BGREMOVE_HOME": str(home)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    made = min((c for c in calls if c["rank"] == 0), key=lambda c: c["start"])  # rank 0's first call writes it
    assert all(c["start"] >= made["end"] for c in calls if c["rank"] == 1)  # rank 1 waited until it was written
    assert len(list((home / "data" / "sample" / "no_bg").glob("*.png"))) == 40
    assert (home / "checkpoints" / "last.pt").is_file()


ONE_RANK_OUT_OF_MEMORY = """
import os, sys
import torch
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel as DDP
from bgremove_utils.training import distributed, loop

real_step, real_wrap, ran_out = loop.train_step, distributed.Process.wrap, []

def step(photo, target, background, gan, config, *args, **kwargs):  # rank 1's GPU is the smaller one
    if os.environ["RANK"] == "1" and len(photo) > 2:
        ran_out.append(len(photo))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return real_step(photo, target, background, gan, config, *args, **kwargs)

def counted(state, bucket):  # DDP's gradient all-reduce, said aloud when rank 1 runs it after running out
    if ran_out:
        print("a collective during the trials", flush=True)
    return allreduce_hook(state, bucket)

def wrap(self, g, d):
    wrapped = real_wrap(self, g, d)
    for module in wrapped:
        if isinstance(module, DDP):
            module.register_comm_hook(None, counted)
    return wrapped

loop.train_step, distributed.Process.wrap = step, wrap
torch.set_num_threads(1)
try:
    loop.train(profile="quick", data_root=sys.argv[1], checkpoint_dir=sys.argv[2], epochs=1, image_size=32,
               base_channels=8, d_channels=8, depth=3, batch_size=4, device="cpu", progress=False, sample_every=0)
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}", flush=True)
    sys.exit(2)
"""


def test_a_batch_too_large_for_one_ranks_gpu_stops_every_rank_with_no_hang_and_no_shared_trial(tmp_path, tiny_sample):
    # A fake out-of-memory on rank 1 of two gloo ranks. Its trial steps, to find a batch that fits, must
    # not run DDP's collectives (the other rank would pair its own step's with them, or wait forever).
    script = tmp_path / "one_rank_out_of_memory.py"
    script.write_text(ONE_RANK_OUT_OF_MEMORY)
    clean = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    env = {**clean, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    ranks = [
        subprocess.Popen(
            [sys.executable, str(script), str(tiny_sample), str(tmp_path / "ckpt")],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [process.communicate(timeout=240)[0] for process in ranks]  # a hang fails here
    assert [process.returncode for process in ranks] == [2, 2], outputs
    assert "ConfigError: batch_size=4: a step does not fit in the device, one of 2 does" in outputs[1]
    assert "a collective during the trials" not in outputs[1]
    assert "PeerError: process 0 stopped (" in outputs[0] and "that one's own error says why" in outputs[0]
