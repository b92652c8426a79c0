"""Training step: images/s and GFLOP/s of a whole GAN step, ours vs float32 eager, against the
machine's ceiling (one large conv) measured in the same run; and each speed trick alone.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..settings import TrainConfig
from ..training.gan import GAN, train_step
from ..training.hardware import amp_dtype
from ..training.loop import READ_EVERY, SHARE_EVERY
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
    """(mean seconds per step, seconds of the first) of a training step as train() runs it: D's
    backgrounds drawn on the device, then `train_step`, in mixed precision (`amp`) and NCHW, or
    otherwise; `compiled`: G's logits and D through torch.compile."""
    gan = GAN.build(replace(config, amp=amp), device)
    for network in (gan.g, gan.d):
        if network is not None:
            network.to(memory_format=layout)
            if compiled:  # in place, so that train_step's calls go through it whichever it makes
                network.compile()
    if compiled:
        gan.g_logits = torch.compile(gan.g.logits)
    photo, target = (t.to(device, memory_format=layout) for t in batch)

    def step():
        background = gan.backgrounds.draw(len(photo)).contiguous(memory_format=layout)
        return train_step(photo, target, background, gan, config)

    first = seconds_per_call(step, 1, warmup=0)  # with torch.compile: compiling
    return seconds_per_call(step, n), first


def step_wait(config: TrainConfig, device, batch, n: int) -> tuple[float, float]:
    """(seconds per step the device waits for the CPU, seconds per step of D's backgrounds): the
    time of `n` steps as train() runs them (backgrounds, `train_step`, its numbers summed on the
    device and read every READ_EVERY steps) less the time of the same backgrounds and steps with
    nothing read. What the second lacks is the host's own work, during which a GPU would idle."""
    gan = GAN.build(config, device)
    photo, target = (t.to(device) for t in batch)
    draw = lambda: gan.backgrounds.draw(len(photo))

    def as_train():  # what train_epoch does around each step
        sums, pending = {}, []
        for i in range(n):
            stats = train_step(photo, target, draw(), gan, config, measure_share=i % SHARE_EVERY == 0)
            stats.pop("adv_share", None)
            sums = {key: sums.get(key, 0.0) + value for key, value in stats.items()}
            pending.append(stats)
            if len(pending) == READ_EVERY or i == n - 1:
                torch.stack([s["loss_g"] for s in pending]).tolist()
                pending = []
        return {key: value.item() for key, value in sums.items()}

    def alone():
        for i in range(n):
            train_step(photo, target, draw(), gan, config, measure_share=i % SHARE_EVERY == 0)

    wait = max(0.0, (seconds_per_call(as_train, 1) - seconds_per_call(alone, 1)) / n)
    return wait, seconds_per_call(draw, n)


def bench_step(config: TrainConfig, device, batch, n: int, conv: tuple, try_compile: bool) -> tuple[list, dict]:
    """Images/s and GFLOP/s of a whole GAN step (D's backgrounds, D then G), ours vs float32 eager,
    against the conv ceiling measured now; how long the step waits for the CPU; then each trick
    alone, to see what wins."""
    with FlopCounterMode(display=False) as counter:
        gan = GAN.build(replace(config, amp=False), device)
        photo, target = (t.to(device) for t in batch)
        train_step(photo, target, gan.backgrounds.draw(len(photo)), gan, config)
    flops, low = counter.get_total_flops(), str(amp_dtype(device) or "fp32").removeprefix("torch.")
    layout, other_layout = torch.contiguous_format, torch.channels_last  # train's layout, and the one it does not use
    plain, _ = time_step(config, device, batch, n, amp=False, layout=layout)
    ours, _ = time_step(config, device, batch, n, amp=True, layout=layout)
    wait, draw = step_wait(config, device, batch, max(n, READ_EVERY))
    ceiling = {k: conv_gflops(device, k == "ours", *conv, n=n) for k in ("plain", "ours")}
    img, gf = (lambda s: config.data.batch_size / s), (lambda s: flops / s / 1e9)
    frac = gf(ours) / ceiling["plain"]  # the ceiling as #5 sets it: the conv with default settings (fp32)
    rows = [
        Row("train step (D + G)", "images/s", img(ours), img(plain), note=f"ours: {low} autocast + {LAYOUT[layout]}"),
        Row("train step", "GFLOP/s", gf(ours), gf(plain), note=f"{flops / 1e9:.2f} GFLOP per step"),
        Row(
            "step's wait for the CPU",
            "ms/step",
            1e3 * wait,
            None,
            False,
            note=f"of {1e3 * ours:.0f} ms; D's backgrounds drawn on the {device.type}: {1e3 * draw:.1f} ms of it",
        ),
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
    variants = {f"{low} autocast, {LAYOUT[other_layout]}": (True, other_layout, False)}
    if try_compile:
        variants["ours + torch.compile"] = (True, layout, True)
    info = {"flops_per_step": flops, "step_s": {"plain": plain, "ours": ours}, "ceiling_gflops": ceiling}
    info |= {"wait_s": wait, "backgrounds_s": draw}
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
