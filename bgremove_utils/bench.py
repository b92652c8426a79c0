"""The benchmark behind `python -m bgremove_utils bench`: data pipeline, training step, inference and
time to quality, each beside a plain baseline measured in the same run, with the ratio.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import tv_tensors
from torchvision.transforms.functional import to_tensor

from .augment import joint_augmentation
from .config import TrainConfig, make_config
from .data import PairedImageDataset, make_loaders
from .images import open_image
from .inference import cut_out, predict_matte, process_and_generate
from .models import GModel
from .pairs import find_pairs
from .sample import make_sample
from .train import GAN, amp_dtype, train, train_step

# Peak dense fp16/bf16 tensor TFLOP/s by device name, first match wins; any other GPU: unknown.
GPU_PEAK_TFLOPS = {"H100 PCIe": 756, "H100": 989, "H200": 989, "A100": 312, "L40S": 362, "L40": 181, "L4": 121}
GPU_PEAK_TFLOPS |= {"A10": 125, "T4": 65}
SECTIONS = ("data", "step", "inference", "quality")
QUICK = {"image_size": 32, "base_channels": 8, "max_channels": 32, "depth": 3, "d_channels": 8, "batch_size": 8}


@dataclass
class Row:
    """One line of the table: our figure beside the plain baseline's; ratio > 1: ours is better."""

    name: str
    unit: str
    ours: float | None
    plain: float | None = None
    higher_is_better: bool = True
    target: str = ""
    met: bool | None = None
    note: str = ""

    def to_dict(self) -> dict:
        ratio = None
        if self.ours and self.plain:
            ratio = self.ours / self.plain if self.higher_is_better else self.plain / self.ours
        return {**asdict(self), "ratio": ratio}


def _median_time(fn, n: int, device: torch.device | None = None, warmup: int = 1) -> float:
    """Median seconds of `n` calls of `fn` after `warmup` untimed ones (on CUDA, until the GPU is done)."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else lambda: None
    times = []
    for _ in range(warmup + n):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


class PlainPairs(Dataset):
    """What most tutorials do: open, convert, resize and to-tensor both files on every access."""

    def __init__(self, pairs: list, image_size: int):
        self.pairs, self.size, self.transform = pairs, image_size, joint_augmentation(image_size)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        size, (photo, cutout) = (self.size, self.size), self.pairs[index]
        x = to_tensor(Image.open(photo).convert("RGB").resize(size, Image.BILINEAR))
        y = to_tensor(Image.open(cutout).convert("RGBA").resize(size, Image.BILINEAR))
        x, y = self.transform(tv_tensors.Image(x), tv_tensors.Image(y))  # the same augmentation as ours
        return x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)


class OneByOne(Dataset):
    """A dataset's items one at a time: hides `__getitems__`, so a DataLoader asks for each picture."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset[index]


def bench_data(pairs: list, config: TrainConfig, n_batches: int) -> tuple[list[Row], PairedImageDataset]:
    """Batches/s of our in-memory uint8 dataset vs PlainPairs: same batch, size and augmentation;
    and ours augmenting one picture at a time with v2 (before `augment_batch`)."""
    start = time.perf_counter()
    ours = PairedImageDataset(pairs, config.image_size, augment=True)
    build, rates = time.perf_counter() - start, []
    for dataset in (ours, PlainPairs(pairs, config.image_size), OneByOne(ours)):
        loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True)
        batches, start = 0, time.perf_counter()
        while batches < n_batches:
            batches += sum(1 for _ in zip(range(n_batches - batches), loader))
        rates.append(batches / (time.perf_counter() - start))
    note = f"batch {config.batch_size}, {config.image_size} px; ours decodes {len(pairs)} pairs once in {build:.1f} s"
    rows = [
        Row("data pipeline", "batches/s", *rates[:2], target=">= 20x", met=rates[0] >= 20 * rates[1], note=note),
        Row("  ours, v2 one picture a time", "batches/s", rates[2], rates[1], note="before augment_batch"),
    ]
    return rows, ours


def conv_gflops(device: torch.device, fast: bool, batch: int = 8, size: int = 128, n: int = 5) -> float:
    """The machine's ceiling: GFLOP/s of one 3x3 conv, 64->64 channels, forward + backward; `fast`:
    in train's mixed precision and channels_last, else float32 NCHW."""
    layout = torch.channels_last if fast else torch.contiguous_format
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device, memory_format=layout)
    x = torch.randn(batch, 64, size, size, device=device).to(memory_format=layout).requires_grad_()
    dtype = amp_dtype(device)

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=fast and dtype is not None):
            y = conv(x)
        y.float().sum().backward()

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / _median_time(step, n, device) / 1e9


def time_step(config: TrainConfig, device, batch, n: int, amp: bool, channels_last: bool, compiled=False, threads=0):
    """(median seconds per step, seconds of the first) of train_step, as train() runs it (amp and
    channels_last) or plainer; `compiled`: G's logits and D through torch.compile; `threads`: so many"""
    gan = GAN.build(replace(config, amp=amp), device)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    gan.g.to(memory_format=layout)
    gan.d.to(memory_format=layout)
    if compiled:  # in place, so that train_step's calls go through them whichever it makes
        gan.g.logits = torch.compile(gan.g.logits)
        gan.d.compile()
        if hasattr(gan, "g_logits"):
            gan.g_logits = gan.g.logits
    photo, target = (t.to(device, memory_format=layout) for t in batch)
    step, default_threads = partial(train_step, photo, target, gan, config), torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        first = _median_time(step, 1, device, warmup=0)  # with torch.compile: compiling
        return _median_time(step, n, device, warmup=1), first
    finally:
        torch.set_num_threads(default_threads)


def bench_step(config: TrainConfig, device, batch, n: int, conv: tuple, try_compile: bool) -> tuple[list, dict]:
    """Images/s and GFLOP/s of a whole GAN step (D then G), ours vs float32 NCHW eager, against the
    conv ceiling measured now; then each trick alone, to see what wins."""
    with FlopCounterMode(display=False) as counter:
        train_step(*(t.to(device) for t in batch), GAN.build(replace(config, amp=False), device), config)
    flops, low = counter.get_total_flops(), str(amp_dtype(device) or "fp32").removeprefix("torch.")
    plain, _ = time_step(config, device, batch, n, amp=False, channels_last=False)
    ours, _ = time_step(config, device, batch, n, amp=True, channels_last=True)
    ceiling = {k: conv_gflops(device, k == "ours", *conv, n=n) for k in ("plain", "ours")}
    img, gf = (lambda s: config.batch_size / s), (lambda s: flops / s / 1e9)
    frac = gf(ours) / ceiling["plain"]  # the ceiling as #5 sets it: the conv with default settings (fp32)
    rows = [
        Row("train step (D + G)", "images/s", img(ours), img(plain), note=f"ours: {low} autocast + channels_last"),
        Row("train step", "GFLOP/s", gf(ours), gf(plain), note=f"{flops / 1e9:.2f} GFLOP per step"),
        Row(f"conv ceiling {conv[1]}px b{conv[0]}", "GFLOP/s", ceiling["ours"], ceiling["plain"], note="3x3, 64 ch"),
        Row("train step / fp32 ceiling", "fraction", frac, gf(plain) / ceiling["plain"], True, ">= 0.7", frac >= 0.7),
        Row(
            f"train step / {low} ceiling",
            "fraction",
            gf(ours) / ceiling["ours"],
            gf(plain) / ceiling["ours"],
            note=f"both against the conv in {low} + channels_last: the most this machine does",
        ),
    ]
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((p for key, p in GPU_PEAK_TFLOPS.items() if key.lower() in name.lower()), None)
        rows.append(Row("train step / GPU peak", "fraction", peak and gf(ours) / peak / 1e3, note=f"{name}: {peak}"))
    variants = {"fp32 + channels_last": (False, True, False), f"{low} autocast, NCHW": (True, False, False)}
    if device.type == "cpu" and torch.get_num_threads() > 1:
        variants["ours, 1 thread"] = (True, True, False, 1)
    if try_compile:
        variants["ours + torch.compile"] = (True, True, True)
    info = {"flops_per_step": flops, "step_s": {"plain": plain, "ours": ours}, "ceiling_gflops": ceiling}
    for label, variant in variants.items():
        seconds, first = time_step(config, device, batch, n, *variant)
        note = f"first step {first:.1f} s (compiling)" if variant[2] else ""
        rows.append(Row(f"  {label}", "images/s", img(seconds), img(plain), note=note))
        info["step_s"][label] = seconds
    return rows, info


def _split(generator: GModel, path: Path, n: int, tmp: Path) -> dict[str, float]:
    """Median seconds of each part of process_and_generate on one picture."""
    image = open_image(path)
    device = next(generator.parameters()).device
    rgba, x = cut_out(image, generator), torch.rand(1, 3, generator.image_size, generator.image_size, device=device)
    with torch.no_grad():
        network = _median_time(partial(generator, x), n, device)
    return {
        "decode": _median_time(partial(open_image, path), n),
        "network": network,
        "resize + network + upsample": _median_time(partial(predict_matte, generator, image), n),
        "cut_out (that + merge)": _median_time(partial(cut_out, image, generator), n),
        "png encode (level 1)": _median_time(partial(rgba.save, tmp / "e.png", compress_level=1), n),
    }


def bench_inference(generator: GModel, photo: Path, sizes, n: int, tmp: Path) -> tuple[list[Row], dict]:
    """Seconds per megapixel of process_and_generate vs the same cut-out saved as a tutorial does
    (PNG at Pillow's default level); and where the time goes."""
    rows, split = [], {}
    for width, height in sizes:
        path = tmp / f"photo_{width}x{height}.jpg"
        Image.open(photo).convert("RGB").resize((width, height), Image.BICUBIC).save(path, quality=92)
        mp = width * height / 1e6
        ours = _median_time(partial(process_and_generate, path, tmp / "ours.png", generator), n)
        plain = _median_time(lambda p=path: cut_out(open_image(p), generator).save(tmp / "plain.png"), n)
        parts = split[f"{width}x{height}"] = {"total": ours, **_split(generator, path, n, tmp)}
        note = f"plain: PNG at Pillow's default level; encoding is {parts['png encode (level 1)'] / ours:.0%} of ours"
        met = ours / mp <= 0.25
        rows.append(Row(f"inference {width}x{height}", "s/MP", ours / mp, plain / mp, False, "<= 0.25", met, note))
    return rows, split


def bench_quality(kwargs: dict, thresholds, cap: float) -> tuple[list[Row], dict]:
    """Seconds of training until the validation IoU first reaches each threshold: the profile as it
    is vs the seed's plain settings (Adam 1e-4 / 1e-5, constant, float32), resumed a few epochs at a
    time until it reaches the last threshold or has run 2x as long as ours (at most `cap` s)."""
    c = make_config(**kwargs)
    loaders = make_loaders(c.data_root, None, None, c.image_size, c.batch_size, c.num_workers, c.seed, c.augment)
    common = {"loaders": loaders, "progress": False, "sample_every": 0}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        ours = train(checkpoint_dir=f"{tmp}/ours", **common, **kwargs)
        ours_wall, plain, start = time.perf_counter() - start, [], time.perf_counter()
        seed = {"lr_g": 1e-4, "lr_d": 1e-5, "lr_schedule": "constant", "amp": False}  # so resumed exactly
        chunk = max(1, len(ours) // 6)
        while time.perf_counter() - start < min(cap, 2 * ours_wall) and _best(plain) < thresholds[-1]:
            overrides = {**kwargs, **seed, "epochs": len(plain) + chunk}
            plain = train(checkpoint_dir=f"{tmp}/plain", resume=True, **common, **overrides)
            if len(plain) < overrides["epochs"]:
                break  # stopped with Ctrl-C
    trained = {"ours": sum(r["seconds"] for r in ours), "plain": sum(r["seconds"] for r in plain)}

    def reach(history, threshold):  # seconds of the epochs up to the first that reached it
        elapsed = np.cumsum([row["seconds"] for row in history])
        return next((float(s) for s, row in zip(elapsed, history) if row["val_iou"] >= threshold), None)

    rows = []
    for threshold in thresholds:
        a, b = reach(ours, threshold), reach(plain, threshold)
        note = f"ours: not reached in {trained['ours']:.0f} s, best IoU {_best(ours):.3f}; " if a is None else ""
        note += f"plain: not reached in {trained['plain']:.0f} s, best IoU {_best(plain):.3f}" if b is None else ""
        note += f" (ratio >= {trained['plain'] / a:.1f}x)" if a and b is None else ""
        target, met = ("<= 180 s", a is not None and a <= 180) if threshold == 0.95 else ("", None)
        rows.append(Row(f"time to val IoU {threshold:.2f}", "s", a, b, False, target, met, note.strip("; ")))
    return rows, {"ours": ours, "plain": plain, "trained_s": trained, "ours_wall_s": ours_wall}


def _best(history: list[dict]) -> float:
    return max((row["val_iou"] for row in history), default=0.0)


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next((ln.split(":")[1].strip() for ln in lines if ln.startswith("model name")), "cpu")
    return "cpu"


def run(device="cpu", quick=False, data_root=None, try_compile=True, max_train_s=600.0, sections=SECTIONS) -> dict:
    """The `sections` on one device at its profile (cpu; full on CUDA); `quick`: tiny sizes and a
    few iterations, to check the structure, not the figures."""
    dev, name = torch.device(device), "quick" if quick else "full" if device.startswith("cuda") else "cpu"
    rows, details, n = [], {}, 1 if quick else 10
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_sample(tmp / "sample", n_pairs=40, size=64) if quick else Path(data_root or make_sample())
        config, (pairs, _) = make_config(name, device=device, **(QUICK if quick else {})), find_pairs(root)
        if "data" in sections:
            data_rows, dataset = bench_data(pairs, config, 2 if quick else 150)
            rows += data_rows
        else:
            dataset = PairedImageDataset(pairs[: config.batch_size], config.image_size)
        if "step" in sections:
            batch = next(iter(DataLoader(dataset, batch_size=config.batch_size)))
            conv = (1, 32) if quick else (8, 128)
            step_rows, details["step"] = bench_step(config, dev, batch, n, conv, try_compile and not quick)
            rows += step_rows
        if "inference" in sections:
            generator = GModel(**config.model_kwargs()).to(dev).eval()
            generator.image_size = config.image_size
            sizes = [(128, 96), (256, 192)] if quick else [(1024, 768), (3000, 2000)]
            inference_rows, details["inference_split_s"] = bench_inference(generator, pairs[0][0], sizes, n, tmp)
            rows += inference_rows
        if "quality" in sections:
            kwargs = {"profile": name, "data_root": str(root), "device": device}
            kwargs |= QUICK | {"epochs": 1} if quick else {}
            quality_rows, details["time_to_quality"] = bench_quality(kwargs, (0.90, 0.95), 60 if quick else max_train_s)
            rows += quality_rows
    shape = f"{config.image_size} px, batch {config.batch_size}, G {config.base_channels}-{config.max_channels}"
    meta = {"device": dev.type, "hardware": _hardware(dev), "threads": torch.get_num_threads(), "profile": name}
    meta |= {"config": f"{shape} depth {config.depth}, D {config.d_channels}", "torch": torch.__version__}
    return {"meta": {**meta, "quick": quick}, "rows": [row.to_dict() for row in rows], "details": details}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}" if value >= 10 else f"{value:.3f}"


def format_table(result: dict) -> str:
    """The plain-text table of one run, then where the inference time goes."""
    meta = result["meta"]
    lines = [
        f"{meta['device']}: {meta['hardware']}, {meta['threads']} threads, torch {meta['torch']}; "
        f"profile {meta['profile']} ({meta['config']})",
        f"{'measure':30s} {'unit':9s} {'ours':>8s} {'plain':>8s} {'ratio':>7s}  {'target':8s} {'':4s} note",
    ]
    for r in result["rows"]:
        ratio, met = f"{r['ratio']:.2f}x" if r["ratio"] else "-", {True: "ok", False: "MISS", None: ""}[r["met"]]
        line = f"{r['name']:30s} {r['unit']:9s} {_fmt(r['ours']):>8s} {_fmt(r['plain']):>8s} {ratio:>7s}  "
        lines.append(f"{line}{r['target']:8s} {met:4s} {r['note']}".rstrip())
    for size, parts in result["details"].get("inference_split_s", {}).items():
        lines.append(f"inference {size}, seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    return "\n".join(lines)


def main(quick=False, json_path=None, device=None, threads=None, **kwargs) -> list[dict]:
    """Run on the CPU, and on CUDA too when there is a GPU (or on `device` only); print, save JSON."""
    devices = [device] if device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results, default_threads = [], torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        for name in devices:
            results.append(run(name, quick=quick, **kwargs))
            print(format_table(results[-1]) + "\n", flush=True)
    finally:
        torch.set_num_threads(default_threads)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"runs": results}, indent=1))
    return results
