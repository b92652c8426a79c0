"""Training the GAN on any device: `train` runs the epochs of `gan.train_step` with progress bars,
validation, sample pictures and atomic, resumable checkpoints, in one process or, under torchrun,
in several with DistributedDataParallel (see distributed.py); it watches the GAN's health and stops
a run that diverges (health.py); one run at a time per checkpoint folder (lock.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.optim.lr_scheduler import OneCycleLR
from torchvision.utils import save_image
from tqdm.auto import tqdm

from ..data.course import course_data_root
from ..data.dataset import Loaders, make_loaders
from ..errors import BgRemoveError, CheckpointError, DivergenceError, PeerError
from ..evaluation.metrics import composite, matte_metrics
from ..files import atomic_write, write_problem
from ..models.checkpoint import save_checkpoint
from ..models.networks import GModel
from ..paths import default_checkpoint_dir
from ..settings import (
    BEST_CHECKPOINT,
    HISTORY_FILE,
    LAST_CHECKPOINT,
    TrainConfig,
    make_config,
    resolve_device,
    with_settings,
)
from . import distributed
from .distributed import Process
from .gan import GAN, Stats, train_step
from .hardware import fitting_batch, free_cached, out_of_memory, peak_gib, start_peak
from .health import DivergenceWatch, warn_if_unhealthy
from .lock import run_lock
from .losses import reconstruction_losses
from .state import restore_training, step_state, training_state, undo_step

SHARE_EVERY = 4  # the adversarial share of G's update is measured every this many steps (two small backwards)
READ_EVERY = 10  # steps between two readings of the losses (for divergence): a reading makes a GPU wait


def one_cycle(
    optimizer: torch.optim.Optimizer, peak: float, steps: int, warmup: float, saved: dict | None = None
) -> OneCycleLR:
    """torch's OneCycleLR over `steps`: a warm-up over the share `warmup` of them, from peak / 25 to
    `peak`, then a cosine anneal to peak / 25 / 1e4, Adam's betas left as set. `saved`: a
    checkpoint's schedule, carried on when it was planned for as many steps (`_schedulers` decides;
    a finished cycle would go on at its last, near-zero rate, so a run resumed for more epochs gets
    a new one)."""
    up = max(1, round(warmup * steps))  # whole steps: OneCycleLR peaks at step pct_start * total_steps - 1
    schedule = OneCycleLR(  # one point more than steps: the rate after the last step is the end's
        optimizer,
        peak,
        total_steps=steps + 1,
        pct_start=(up + 1) / (steps + 1),
        cycle_momentum=False,
        final_div_factor=1e4,
    )
    if saved is not None and saved.get("total_steps") == steps + 1:
        schedule.load_state_dict(saved)
        for group, lr in zip(optimizer.param_groups, schedule.get_last_lr()):
            group["lr"] = lr  # where the saved run was, not the new schedule's start
    return schedule


def _schedulers(gan: GAN, config: TrainConfig, steps_per_epoch: int, start: int, saved: list) -> list:
    """The one-cycle schedules of G's and D's optimizers (G's alone without D) for the epochs from
    `start` on: the saved ones carried on when they end where this run ends (however often it was
    resumed); else, as for a run resumed for more epochs, a new cycle over the steps left."""
    if config.lr_schedule != "onecycle":
        return []
    left = (config.epochs - start) * steps_per_epoch
    saved = [*(saved or []), None, None][:2]  # G's, D's (none when saved without D)
    if saved[0] is not None and saved[0].get("total_steps", 0) - 1 - saved[0].get("last_epoch", 0) == left:
        total = saved[0]["total_steps"] - 1  # the saved cycle, where it was
    else:
        total, saved = left, [None, None]
    pairs = zip((gan.opt_g, gan.opt_d), (config.lr_g, config.lr_d), saved)
    return [one_cycle(opt, lr, total, config.warmup, state) for opt, lr, state in pairs if opt is not None]


def save_samples(g: GModel, photo: torch.Tensor, target: torch.Tensor, path: Path) -> None:
    """A picture of a few validation images: photo | prediction | truth, cut-outs over grey."""
    pred = g.predict(photo)
    rows = [photo, composite(photo, pred[:, 3:]), composite(target[:, :3], target[:, 3:])]
    with atomic_write(path) as handle:
        save_image(torch.cat(rows, dim=0), handle, nrow=len(photo), format="png")


def train(
    config: TrainConfig | None = None,
    *,
    profile: str | None = None,
    resume: bool = False,
    loaders: Loaders | None = None,
    progress: bool = True,
    stop_at_iou: float | None = None,
    **overrides,
) -> list[dict]:
    """Train GModel and DModel; return the per-epoch history (also saved as history.json).

    `config` or `profile` ("full", "cpu", "quick"; default from $BGREMOVE_PROFILE or the device)
    sets everything; any setting can be overridden by its name, e.g.
    `train(profile="quick", epochs=3, checkpoint_dir="ckpt")`. Checkpoints go to
    `checkpoint_dir/last.pt` every epoch and `best.pt`, the G to export, at each epoch (`keep="last"`)
    or on the best validation IoU (`keep="best"`); `resume=True`
    carries on from `last.pt`. Ctrl-C stops cleanly and returns the history so far, and so does the
    first epoch whose validation IoU reaches `stop_at_iou` (the bench's time to quality). Under
    torchrun, each process trains on its part of the data and only rank 0 writes.
    Failing safely: losses that diverge stop the run within the epoch (DivergenceError), before
    a diverged model is saved; a second run on the same checkpoint_dir is refused, and a full
    disk stops the run, each with one CheckpointError that says what to do."""
    with distributed.quiet_unless_main():  # under torchrun, each message once (from rank 0)
        config = make_config(profile, **overrides) if config is None else with_settings(config, **overrides)
    ckpt_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else default_checkpoint_dir()
    with distributed.process(resolve_device(config.device)) as proc, run_lock(ckpt_dir, proc):
        gan = GAN.build(config, proc.device)
        if loaders is None:
            with distributed.quiet_unless_main():
                data = config.data if config.data.names_source() else replace(config.data, data_root=_course(proc))
                loaders = make_loaders(data, config.g.image_size)
            config = replace(config, data=data)  # the checkpoints say what it trained on
        fixed = [t[:6].to(proc.device) for t in next(iter(loaders.val))]  # the sample pictures, each time the same
        loaders = proc.shard(loaders, config.seed)
        config = replace(config, epochs=config.planned_epochs(len(loaders.train)))  # from steps unless given
        if loaders.train.generator is not None:
            loaders.train.generator.manual_seed(config.seed)  # the same shuffling for the same seed, run after run
        history, best_iou, start, saved_schedules, warned = [], -1.0, 0, [], set()
        if resume and proc.exists(ckpt_dir / LAST_CHECKPOINT):  # last.pt: it has the RNG states
            history, best_iou, start, saved_schedules = restore_training(
                ckpt_dir / LAST_CHECKPOINT, gan, loaders, config
            )
        watch = DivergenceWatch(config, history)
        schedulers = _schedulers(gan, config, len(loaders.train), start, saved_schedules)
        gan.g_logits, gan.d_logits = proc.wrap(gan.g, gan.d)  # after restoring: all processes start alike

        bar = tqdm(  # moved on by hand after each epoch, so that "k/N" shows epoch k's own numbers
            desc=f"{config.profile} on {proc.device.type}" + (f" x{proc.world_size}" if proc.ddp else ""),
            disable=not (progress and proc.is_main),
            initial=start,
            total=config.epochs,
            unit="epoch",
        )
        try:
            for epoch in range(start, config.epochs):
                row = train_epoch(gan, config, loaders, schedulers, epoch, proc, progress, watch)
                row["val_alpha_spread"] = gan.g.predict(fixed[0])[:, 3].mean((1, 2)).std().item()
                if problem := watch.check_epoch(row):
                    raise DivergenceError(f"training diverged in {problem}")
                history.append(row)
                write_best = config.keep == "last" or row["val_iou"] > best_iou
                best_iou = max(best_iou, row["val_iou"])
                if proc.is_main:
                    warn_if_unhealthy(history, config, warned)
                    state = training_state(gan, schedulers, loaders, config, epoch + 1, history, best_iou)
                    save_epoch(state, write_best, ckpt_dir, gan.g, fixed, config)
                proc.barrier()  # the checkpoint is complete before any process goes on
                bar.update()
                bar.set_postfix({k: f"{row[k]:.3f}" for k in ("loss_g", "loss_d", "val_iou") if k in row})
                if stop_at_iou is not None and row["val_iou"] >= stop_at_iou:
                    break
        except KeyboardInterrupt:
            if proc.is_main:
                print(f"\nTraining interrupted after {len(history)} epoch(s); the last checkpoint is in {ckpt_dir}.")
        except DivergenceError as exc:
            raise DivergenceError(f"{exc}; {_what_to_do(config, ckpt_dir, history)}") from None
        except RuntimeError as exc:  # under torchrun, what a process sees of another that stopped: a failed collective
            if not proc.ddp or isinstance(exc, BgRemoveError):
                raise
            kept = f"; epoch {history[-1]['epoch']} is in {ckpt_dir / LAST_CHECKPOINT}" if history else ""
            raise PeerError(
                f"process {proc.rank} stopped ({str(exc).splitlines()[0][:100]}): under torchrun, what a process "
                f"sees when another one stopped; that one's own error says why (a batch too large for its GPU...){kept}"
            ) from exc
        finally:
            bar.close()
        if history and proc.is_main:
            if progress:  # the bars are widgets that a saved notebook may show as "0%": this line stays
                print(summary_line(history, config.profile, proc.device.type))
            peaks = [row["peak_gib"] for row in history if row.get("peak_gib") is not None]
            if peaks and progress:
                print(
                    f"peak GPU memory: {max(peaks):.2f} GiB (batch {config.data.batch_size}, {config.g.image_size} px)"
                )
        return history


def _course(proc: Process) -> str:
    """The course's pairs (`course_data_root`), its sample made first where it needs it: by rank 0
    alone under torchrun, while the other processes wait, then found complete by them (several
    writers of one file would clash)."""
    if proc.is_main:
        course_data_root()
    proc.barrier()
    return course_data_root()


def summary_line(history: list[dict], profile: str, device: str) -> str:
    """One line on a finished (or stopped) run: its epochs, their time, the last epoch's numbers."""
    last, seconds = history[-1], sum(row["seconds"] for row in history)
    return (
        f"{profile} on {device}: epochs {history[0]['epoch']}-{last['epoch']} in {seconds:.0f} s; last epoch: "
        f"G loss {last['loss_g']:.2f}, "
        + (f"D loss {last['loss_d']:.3f}, " if "loss_d" in last else "no D (adv_weight 0), ")
        + f"validation loss {last.get('val_loss', float('nan')):.3f}, "
        f"validation IoU {last['val_iou']:.3f}"
        + (f"; the loop waited for data {last['data_wait']:.0%} of the epoch" if "data_wait" in last else "")
    )


def save_epoch(state: dict, write_best: bool, ckpt_dir: Path, g: GModel, fixed: list, config: TrainConfig) -> None:
    """After an epoch: last.pt and history.json; best.pt when this epoch's G is the one to keep
    (`write_best`: every epoch, or when the validation IoU is the best yet); every `sample_every` epochs
    (and at the last) a picture of the fixed validation predictions. A full disk stops the run with
    one CheckpointError naming the last complete checkpoint."""
    epoch, last = state["epoch"], ckpt_dir / LAST_CHECKPOINT
    kept = epoch - 1  # the epoch last.pt holds until it is replaced
    try:
        save_checkpoint(state, last)
        kept = epoch
        with _writing(ckpt_dir / HISTORY_FILE), atomic_write(ckpt_dir / HISTORY_FILE) as handle:
            handle.write(json.dumps(state["history"], indent=1).encode())
        if write_best:
            save_checkpoint(state, ckpt_dir / BEST_CHECKPOINT)
        if config.sample_every and (epoch % config.sample_every == 0 or epoch == config.epochs):
            with _writing(path := ckpt_dir / "samples" / f"epoch_{epoch:03d}.png"):
                save_samples(g, *fixed, path)
    except CheckpointError as exc:
        where = f"{last} (epoch {kept}) is the last complete checkpoint" if kept else "no checkpoint is complete yet"
        raise CheckpointError(f"{exc}; {where}: once there is room, train again with --resume") from None


@contextlib.contextmanager
def _writing(path: Path):
    """A full disk or a folder that cannot be written, while writing `path`: one CheckpointError."""
    try:
        yield
    except OSError as exc:
        problem = write_problem(exc, path)
        if problem is None:
            raise
        raise CheckpointError(f"cannot write {path}: {problem}") from None


def _what_to_do(config: TrainConfig, ckpt_dir: Path, history: list[dict]) -> str:
    """What a learner does after a run diverged: lower rates, and where the last good checkpoint is."""
    rates = f"lower lr_g / lr_d (--lr-g / --lr-d, now {config.lr_g:g} / {config.lr_d:g}) and train again"
    if not history:
        return f"{rates}; no checkpoint was written"
    last = f"{ckpt_dir / LAST_CHECKPOINT} (epoch {history[-1]['epoch']})"
    return f"{rates}, or --resume with lower rates from the last good checkpoint, {last}; best.pt was kept"


def train_epoch(
    gan: GAN,
    config: TrainConfig,
    loaders: Loaders,
    schedulers: list,
    epoch: int,
    proc: Process,
    progress: bool,
    watch: DivergenceWatch | None = None,
) -> dict:
    """One pass over the training data, then validation: one history row (the same on every process),
    with the epoch's `seconds`, the validation's `val_seconds`, and `data_wait`: the share of the
    training pass the loop spent getting its next batch ready (loader, copy, D's backgrounds) rather
    than stepping. The steps' numbers stay on the device and are read every READ_EVERY steps
    (`watch` checks each step's losses then: a run that diverges stops with a DivergenceError) and at
    the epoch's end: a GPU that has to hand its numbers back at every step waits for the CPU."""
    start, sums, shares, n, seen, waited, pending = time.perf_counter(), {}, [], 0, 0, 0.0, []
    proc.start_epoch(loaders.train, epoch, config.seed)
    start_peak(gan.device)
    gan.g.train()
    if gan.d is not None:
        gan.d.train()
    tick = time.perf_counter()
    for photo, target in tqdm(loaders.train, desc=f"epoch {epoch + 1}", leave=False, disable=not progress):
        photo, target = photo.to(gan.device, non_blocking=True), target.to(gan.device, non_blocking=True)
        background = gan.backgrounds.draw(len(photo))  # on the device: on a GPU, queued like the step itself
        waited += time.perf_counter() - tick  # the loop had no batch to step on: data's share of the epoch
        stats = _step(photo, target, background, gan, config, measure_share=n % SHARE_EVERY == 0)
        if "adv_share" in stats:  # measured every SHARE_EVERY steps only
            shares.append(stats.pop("adv_share"))
        for key, value in stats.items():
            sums[key] = sums.get(key, 0.0) + value
        pending.append(stats)
        n, seen = n + 1, seen + len(photo)
        if len(pending) == READ_EVERY or n == len(loaders.train):
            _read(pending, watch, proc, f"epoch {epoch + 1}, step {{}} of {len(loaders.train)}", n)
            pending = []
        for scheduler in schedulers:
            scheduler.step()
        tick = time.perf_counter()
    means = proc.mean(_floats(sums), n)  # over every process's steps
    if shares:
        means |= proc.mean(_floats({"adv_share": sum(shares)}), len(shares))
    means |= proc.mean({"data_wait": waited / (tick - start)}, 1)  # the mean share over the processes
    proc.log_indices(loaders.train.sampler, seen, epoch)
    val = validate_split(gan.g, loaders.val, gan.device, proc)
    row = {"epoch": epoch + 1, **means, "lr_g": gan.opt_g.param_groups[0]["lr"]}
    row |= {f"val_{key}": value for key, value in val.items()}
    end = time.perf_counter()
    row |= {"seconds": end - start, "val_seconds": end - tick}
    return row | ({"peak_gib": peak_gib(gan.device)} if gan.device.type == "cuda" else {})


def _floats(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """The values, 0-d tensors on the device, read back at once (one wait, not one per value)."""
    return dict(zip(values, torch.stack(list(values.values())).tolist())) if values else {}


def _read(pending: list[Stats], watch: DivergenceWatch | None, proc: Process, where: str, n: int) -> None:
    """Read the losses of the last steps (`pending`, in order) in one go, and check each step's for
    divergence: a DivergenceError naming the step (`where`, with its number) on every process."""
    problem, at = None, n
    if watch is not None:
        keys = [k for k in ("loss_g", "loss_d") if k in pending[0]]
        rows = torch.stack([torch.stack([s[k] for k in keys]) for s in pending]).cpu().tolist()
        for i, row in enumerate(rows):
            problem = watch.check(dict(zip(keys, row)))
            if problem:
                at = n - len(rows) + i + 1
                break
    if proc.anyone(problem is not None):  # under torchrun: every process stops at the same reading
        raise DivergenceError(f"training diverged in {where.format(at)}: {problem or 'on another process'}")


@torch.no_grad()
def validate_split(g: GModel, loader, device: torch.device, proc: Process) -> dict[str, float]:
    """G over the validation split, once: the metrics `evaluate` reports (synced across processes), of
    G's prediction alone (a reading of progress at one pass's cost: `evaluate` also averages in the
    mirror image, `GModel.predict`), and `loss`, the reconstruction loss (its four terms summed, as
    G's loss has them before `rec_weight`), the mean over the pictures, to set beside the same terms
    on the training batches (a gap that grows is overfitting)."""
    g.eval()
    metrics, total, n = matte_metrics(device), 0.0, 0
    for photo, target in loader:  # its pass draws one seed from torch's stream, as every epoch's validation has
        photo, target = photo.to(device), target.to(device)
        logits = g.logits(photo)
        metrics.update(torch.sigmoid(logits[:, 3:]).float(), photo, target)
        total += sum(reconstruction_losses(logits, target).values()).item() * len(photo)
        n += len(photo)
    g.train()
    return metrics.compute() | proc.mean({"loss": total}, n)


def _step(
    photo: torch.Tensor, target: torch.Tensor, background: torch.Tensor, gan: GAN, config: TrainConfig, **kwargs
) -> Stats:
    """`train_step`; a batch that does not fit in the GPU's memory ends training with one clear error
    that says which batch size fits (found by trying smaller ones of the whole GAN step, in one part
    each, on the plain networks: under torchrun the other processes take no part in the trials).
    The failed step and the trials leave D, the optimizers' states and the scalers as they were (and
    G, which changes only at a step's end: unless the memory ran out there)."""
    before = step_state(gan)
    try:
        return train_step(photo, target, background, gan, config, **kwargs)
    except torch.OutOfMemoryError:
        pass  # out of the handler first: its traceback holds the failed step's tensors
    undo_step(gan, before)  # D may have stepped before G's half ran out of memory
    free_cached()
    before, one_part = step_state(gan, whole=True, device="cpu"), replace(config, grad_accum=1)
    wrapped, (gan.g_logits, gan.d_logits) = (gan.g_logits, gan.d_logits), (gan.g.logits, gan.d)

    def attempt(size: int) -> None:  # a trial step that leaves no trace
        try:
            train_step(photo[:size], target[:size], background[:size], gan, one_part)
        finally:
            undo_step(gan, before)

    try:
        fits = fitting_batch(attempt, len(photo))
    finally:
        gan.g_logits, gan.d_logits = wrapped
    raise out_of_memory(len(photo), fits, gan.device)
