"""Training on several GPUs or machines with `torchrun` and PyTorch's DistributedDataParallel: join the
process group torchrun describes in the environment, shard the data, reduce the numbers, leave cleanly.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import CheckpointError, ConfigError, DataError

INDICES_ENV = "BGREMOVE_LOG_INDICES"  # a folder: each rank writes there the indices it trained on


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


def accumulating(module, last: bool):
    """While a batch goes through in parts (gradient accumulation), DistributedDataParallel should
    average the gradients once, after the last part: `no_sync` before it. Plain modules: nothing."""
    return module.no_sync() if not last and isinstance(module, DDP) else contextlib.nullcontext()


@dataclass(frozen=True)
class Process:
    """This process's place in the run: alone (`ddp` False: every method below is then a no-op
    or the plain answer), or one of torchrun's processes training with DistributedDataParallel."""

    device: torch.device
    ddp: bool = False
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """The one process that shows bars, prints and writes files."""
        return self.rank == 0

    def shard(self, loaders, seed: int):
        """The train split dealt out by a DistributedSampler (shuffled with `seed`, reshuffled by
        `start_epoch`), the validation split dealt out in turn: each process its own part;
        `batch_size` stays per process."""
        if not self.ddp:
            return loaders
        train, val = loaders.train, loaders.val
        sampler = DistributedSampler(train.dataset, self.world_size, self.rank, shuffle=True, seed=seed, drop_last=True)
        if len(sampler) == 0:
            n = len(train.dataset)
            raise DataError(f"{n} training pair(s) cannot be dealt out to {self.world_size} processes.")
        own = range(self.rank, len(val.dataset), self.world_size)  # uneven parts are fine: metrics sum their states
        return type(loaders)(
            train=_like(train, sampler, drop_last=len(sampler) > train.batch_size),
            val=_like(val, list(own), drop_last=False),
            test=loaders.test,
        )

    def wrap(self, g: torch.nn.Module, d: torch.nn.Module | None) -> tuple:
        """What the training step calls for G's logits and for D (None: no D): the plain networks, or
        each in DistributedDataParallel, which starts them from rank 0's weights and averages the
        gradients: the one collective of a step. Buffers are synced once, not at each forward (D's
        spectral norm's vectors follow from the weights, the same on every process)."""
        if not self.ddp:
            return g.logits, d
        ids = [self.device.index] if self.device.type == "cuda" else None
        wrap = lambda module: DDP(module, device_ids=ids, forward_sync_buffers=False)
        return wrap(_Logits(g)), wrap(d) if d is not None else None

    def start_epoch(self, loader: DataLoader, epoch: int, seed: int) -> None:
        """A new shuffle each epoch (DistributedSampler.set_epoch), dealt out anew, and each process
        its own random augmentations, reproducible from the seed, epoch and rank."""
        if self.ddp:
            loader.sampler.set_epoch(epoch)
            torch.manual_seed(seed + epoch * self.world_size + self.rank)

    def mean(self, sums: dict[str, float], count: int) -> dict[str, float]:
        """Each key's sum over all processes divided by the total count: the mean over the global batch."""
        if not self.ddp:
            return {k: v / max(count, 1) for k, v in sums.items()}
        keys = list(sums)  # the same order on every process: train_step always returns the same keys
        values = torch.tensor([sums[k] for k in keys] + [count], dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        return {k: (v / max(values[-1].item(), 1)) for k, v in zip(keys, values[:-1].tolist())}

    def exists(self, path: Path) -> bool:
        """Whether `path` exists; under torchrun every process checks, and all must see it or none."""
        if not self.ddp:
            return path.exists()
        seen = torch.tensor([int(path.exists())], device=self.device)
        dist.all_reduce(seen)
        if 0 < seen.item() < self.world_size:
            raise CheckpointError(
                f"{path}: {seen.item()} of {self.world_size} processes see it; to resume on several machines, "
                "put --checkpoint-dir on a shared file system (or copy last.pt to the same path on each machine)."
            )
        return bool(seen.item())

    def anyone(self, flag: bool) -> bool:
        """Whether `flag` holds on any process: all of them then take the same turn (stop together)."""
        if not self.ddp:
            return flag
        votes = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(votes)
        return bool(votes.item())

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.ddp:
            dist.barrier()

    def log_indices(self, sampler, n_seen: int, epoch: int) -> None:
        """With $BGREMOVE_LOG_INDICES set to a folder: append to `indices_rank<r>.jsonl` there the
        data set indices this process trained on in `epoch` (the sampler's first `n_seen`; the
        DataLoader takes them in order and drops only the tail). A debugging aid, the tests' witness."""
        folder = os.environ.get(INDICES_ENV)
        if not folder or not self.ddp:
            return
        indices = list(sampler)[:n_seen]  # DistributedSampler: the same order every time for one epoch
        Path(folder).mkdir(parents=True, exist_ok=True)
        with open(Path(folder) / f"indices_rank{self.rank}.jsonl", "a") as handle:
            handle.write(json.dumps({"rank": self.rank, "epoch": epoch + 1, "indices": indices}) + "\n")


@contextlib.contextmanager
def process(device: torch.device) -> Iterator[Process]:
    """This process, alone; or, when torchrun launched it, joined to the process group torchrun
    set up in the environment (env://): NCCL with each process on its own GPU, `cuda:LOCAL_RANK`,
    or gloo on the CPU. The group is left at the end, after an error too."""
    if not dist.is_initialized() and not launched_by_torchrun():
        yield Process(device)
        return
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
    try:
        yield Process(device, True, dist.get_rank(), dist.get_world_size())
    finally:
        if owns and dist.is_initialized():
            dist.destroy_process_group()


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


class _Logits(torch.nn.Module):
    """G's `logits` as a `forward`: DistributedDataParallel syncs the gradients of `forward` calls only."""

    def __init__(self, g: torch.nn.Module):
        super().__init__()
        self.g = g

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        return self.g.logits(photo)
