"""Training on several GPUs or machines with `torchrun` and PyTorch's DistributedDataParallel: join the
process group torchrun describes in the environment, shard the data, reduce the numbers, leave cleanly.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

from .errors import CheckpointError, ConfigError, DataError

INDICES_ENV = "BGREMOVE_LOG_INDICES"  # a folder: each rank writes there the indices it trained on


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the group: global rank, rank on its machine, number of processes."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    owns_group: bool  # we started the process group, so we end it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher of the same contract) started this process."""
    return all(name in os.environ for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))


def is_main() -> bool:
    """Rank 0, or not distributed at all: the one process that prints, logs and writes."""
    return (dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))) == 0


@contextlib.contextmanager
def quiet_unless_main():
    """Silence prints and warnings on every process but rank 0, so each message shows once."""
    if is_main():
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def setup(device: torch.device) -> DistInfo | None:
    """Join the process group torchrun set up in the environment (env://): NCCL with each process
    on its own GPU, `cuda:LOCAL_RANK`, or gloo on the CPU. None when not launched by torchrun."""
    if not dist.is_initialized() and not launched_by_torchrun():
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} GPU(s); "
                "start at most that many processes per machine (--nproc_per_node)."
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ConfigError(f"device={device.type!r}: DistributedDataParallel runs on CUDA or the CPU; use --device cpu")
    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://", device_id=device if device.type == "cuda" else None)
    return DistInfo(dist.get_rank(), local_rank, dist.get_world_size(), device, owns)


def cleanup(info: DistInfo | None) -> None:
    """destroy_process_group, if this run started it; after success or an error alike."""
    if info is not None and info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def shard_loaders(loaders, info: DistInfo | None, seed: int):
    """Under torchrun, the same loaders with the train split dealt out by a DistributedSampler
    (shuffled with `seed`; `start_epoch` reshuffles it) and the validation split dealt out in
    turn: every process sees its own part; `batch_size` stays per process. Else, as they are."""
    if info is None:
        return loaders
    train, val = loaders.train, loaders.val
    sampler = DistributedSampler(train.dataset, info.world_size, info.rank, shuffle=True, seed=seed, drop_last=True)
    if len(sampler) == 0:
        raise DataError(f"{len(train.dataset)} training pair(s) cannot be dealt out to {info.world_size} processes.")
    own = range(info.rank, len(val.dataset), info.world_size)  # uneven parts are fine: metrics sum their states
    return type(loaders)(
        train=_like(train, sampler, drop_last=len(sampler) > train.batch_size),
        val=_like(val, list(own), drop_last=False),
        test=loaders.test,
    )


def _like(loader: DataLoader, sampler, drop_last: bool) -> DataLoader:
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=drop_last,
        persistent_workers=loader.persistent_workers,
    )


def start_epoch(loader: DataLoader, epoch: int, seed: int, info: DistInfo | None) -> None:
    """Under torchrun: a new shuffle each epoch (DistributedSampler.set_epoch), dealt out anew, and
    each process its own random augmentations, reproducible from the seed, epoch and rank."""
    if info is not None:
        loader.sampler.set_epoch(epoch)
        torch.manual_seed(seed + epoch * info.world_size + info.rank)


def mean_across(sums: dict[str, float], count: int, info: DistInfo | None) -> dict[str, float]:
    """Each key's sum over all processes divided by the total count: the mean over the global batch."""
    if info is None:
        return {k: v / max(count, 1) for k, v in sums.items()}
    keys = list(sums)  # the same order on every process: train_step always returns the same keys
    values = torch.tensor([sums[k] for k in keys] + [count], dtype=torch.float64, device=info.device)
    dist.all_reduce(values)
    return {k: (v / max(values[-1].item(), 1)) for k, v in zip(keys, values[:-1].tolist())}


def exists_everywhere(path: Path, info: DistInfo | None) -> bool:
    """Whether `path` exists; under torchrun every process checks, and all must see it or none."""
    if info is None:
        return path.exists()
    seen = torch.tensor([int(path.exists())], device=info.device)
    dist.all_reduce(seen)
    if 0 < seen.item() < info.world_size:
        raise CheckpointError(
            f"{path}: {seen.item()} of {info.world_size} processes see it; to resume on several machines, "
            "put --checkpoint-dir on a shared file system (or copy last.pt to the same path on each machine)."
        )
    return bool(seen.item())


def log_indices(sampler, n_seen: int, epoch: int, info: DistInfo | None) -> None:
    """With $BGREMOVE_LOG_INDICES set to a folder: append to `indices_rank<r>.jsonl` there the data
    set indices this process trained on in `epoch` (the sampler's first `n_seen`; the DataLoader
    takes them in order and drops only the tail). A debugging aid, and the tests' witness."""
    folder = os.environ.get(INDICES_ENV)
    if not folder or info is None:
        return
    indices = list(sampler)[:n_seen]  # DistributedSampler: the same order every time for one epoch
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / f"indices_rank{info.rank}.jsonl", "a") as handle:
        handle.write(json.dumps({"rank": info.rank, "epoch": epoch + 1, "indices": indices}) + "\n")


def barrier(info: DistInfo | None) -> None:
    """Wait until every process gets here (nothing to wait for in one process)."""
    if info is not None:
        dist.barrier()


class _Logits(torch.nn.Module):
    """G's `logits` as a `forward`: DistributedDataParallel syncs the gradients of `forward` calls only."""

    def __init__(self, g: torch.nn.Module):
        super().__init__()
        self.g = g

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        return self.g.logits(photo)


def wrap(g: torch.nn.Module, d: torch.nn.Module, info: DistInfo) -> tuple[DDP, DDP]:
    """G's logits and D, each in DistributedDataParallel (which starts them from rank 0's weights)."""
    ids = [info.device.index] if info.device.type == "cuda" else None
    return DDP(_Logits(g), device_ids=ids), DDP(d, device_ids=ids)
