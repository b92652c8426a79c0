"""Training step: images/s and GFLOP/s of a whole GAN step, ours vs float32 eager, against the
machine's ceiling (one large conv) measured in the same run; and each speed trick alone.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..settings import TrainConfig
from ..training.gan import GAN, train_step
from ..training.hardware import amp_dtype, memory_format
from .common import Row, seconds_per_call

# Peak dense fp16/bf16 tensor TFLOP/s by device name, first match wins; any other GPU: unknown.
GPU_PEAK_TFLOPS = {"H100 PCIe": 756, "H100": 989, "H200": 989, "A100": 312, "L40S": 362, "L40": 181, "L4": 121}
GPU_PEAK_TFLOPS |= {"A10": 125, "T4": 65}
LAYOUT = {torch.contiguous_format: "NCHW", torch.channels_last: "channels_last"}


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
    return counter.get_total_flops() / seconds_per_call(step, n) / 1e9


def time_step(config: TrainConfig, device, batch, n: int, amp: bool, layout: torch.memory_format, compiled=False):
    """(mean seconds per step, seconds of the first) of train_step, as train() runs it (amp, and
    the device's `memory_format`) or otherwise; `compiled`: G's logits and D through torch.compile."""
    gan = GAN.build(replace(config, amp=amp), device)
    gan.g.to(memory_format=layout)
    gan.d.to(memory_format=layout)
    if compiled:  # in place, so that train_step's calls go through them whichever it makes
        gan.g_logits = torch.compile(gan.g.logits)
        gan.d.compile()
    photo, target = (t.to(device, memory_format=layout) for t in batch)
    step = partial(train_step, photo, target, gan, config, gan.draw_unlabelled(config.unlabelled_batch, photo))
    first = seconds_per_call(step, 1, warmup=0)  # with torch.compile: compiling
    return seconds_per_call(step, n), first


def bench_step(config: TrainConfig, device, batch, n: int, conv: tuple, try_compile: bool) -> tuple[list, dict]:
    """Images/s and GFLOP/s of a whole GAN step (D then G), ours vs float32 NCHW eager, against the
    conv ceiling measured now; then each trick alone, to see what wins."""
    with FlopCounterMode(display=False) as counter:
        gan = GAN.build(replace(config, amp=False), device)
        photo, target = (t.to(device) for t in batch)
        train_step(photo, target, gan, config, gan.draw_unlabelled(config.unlabelled_batch, photo))
    flops, low = counter.get_total_flops(), str(amp_dtype(device) or "fp32").removeprefix("torch.")
    layout = memory_format(device)  # train's: NCHW on a CPU, channels_last on CUDA
    other_layout = torch.channels_last if layout == torch.contiguous_format else torch.contiguous_format
    plain, _ = time_step(config, device, batch, n, amp=False, layout=torch.contiguous_format)
    ours, _ = time_step(config, device, batch, n, amp=True, layout=layout)
    ceiling = {k: conv_gflops(device, k == "ours", *conv, n=n) for k in ("plain", "ours")}
    img, gf = (lambda s: config.data.batch_size / s), (lambda s: flops / s / 1e9)
    u = (
        f"; each step also cuts out {config.unlabelled_batch} photos without mattes"
        if config.unlabelled and config.adv_weight
        else ""
    )
    frac = gf(ours) / ceiling["plain"]  # the ceiling as #5 sets it: the conv with default settings (fp32)
    rows = [
        Row(
            "train step (D + G)", "images/s", img(ours), img(plain), note=f"ours: {low} autocast + {LAYOUT[layout]}{u}"
        ),
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
    variants = {f"{low} autocast, {LAYOUT[other_layout]}": (True, other_layout, False)}  # the layout train does not use
    if try_compile:
        variants["ours + torch.compile"] = (True, layout, True)
    info = {"flops_per_step": flops, "step_s": {"plain": plain, "ours": ours}, "ceiling_gflops": ceiling}
    n = max(1, n // 2)  # each trick alone, and other batch sizes: fewer steps (the bench's own time)
    for label, variant in variants.items():
        seconds, first = time_step(config, device, batch, n, *variant)
        note = f"first step {first:.1f} s (compiling)" if variant[2] else ""
        rows.append(Row(f"  {label}", "images/s", img(seconds), img(plain), note=note))
        info["step_s"][label] = seconds
    size = config.data.batch_size
    for other in (size // 2, size * 2):  # the batch size the autocast kernels like best, at the same settings
        part = [t.repeat(2, 1, 1, 1)[:other] for t in batch]
        seconds, _ = time_step(
            replace(config, data=replace(config.data, batch_size=other)), device, part, n, True, layout
        )
        rows.append(Row(f"  ours, batch {other}", "images/s", other / seconds, img(plain), note=f"ours: batch {size}"))
        info["step_s"][f"batch {other}"] = seconds
    return rows, info
