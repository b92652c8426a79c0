"""One run of every section on one device, the printed table, and the JSON."""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..data.dataset import PairedImageDataset
from ..data.pairs import find_pairs
from ..data.sample import make_sample
from ..errors import CheckpointError
from ..models.checkpoint import load_generator
from ..models.networks import GModel
from ..paths import default_checkpoint_dir
from ..settings import BEST_CHECKPOINT, GConfig, make_config, pick_profile
from ..training.hardware import cpu_info
from .data import bench_data, bench_data_wait
from .inference import bench_inference, bench_onnx
from .quality import bench_quality
from .step import bench_step

SECTIONS = ("data", "step", "inference", "quality")
QUICK = {"image_size": 32, "base_channels": 8, "max_channels": 32, "depth": 3, "d_channels": 8, "batch_size": 8}
# validation IoUs for the time to quality: a `cpu` run reaches the first two on the course's sample, all
# three on a folder of real pairs (`--data-root`)
LEVELS = (0.65, 0.70, 0.80)
PEER_SECONDS = 45.0  # each peer's training time in the time-to-quality section


def _hardware(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_info().get("model name", "cpu")


def _generator(g: GConfig, device: torch.device, quick: bool) -> tuple[GModel, str]:
    """The trained generator of checkpoints/best.pt when it has the profile's shape, as a user cuts
    out with; else an untrained one, whose matte is soft everywhere: the refinement's worst case."""
    best = default_checkpoint_dir() / BEST_CHECKPOINT
    if not quick and best.is_file():
        with contextlib.suppress(CheckpointError):
            generator = load_generator(best, device)
            if generator.config == g:
                return generator, f"trained ({best})"
    return GModel(g).to(device).eval(), "untrained (a soft matte everywhere: the refinement's worst case)"


def run(
    device="cpu",
    quick=False,
    data_root=None,
    try_compile=True,
    peer_seconds=PEER_SECONDS,
    sections=SECTIONS,
    zoom_out: float | None = None,
):
    """The `sections` on one device at its profile (cpu; full on CUDA); `quick`: tiny sizes and a
    few iterations, to check the structure, not the figures. `peer_seconds`: each peer's training
    in the time to quality; `zoom_out`: the training pictures' (default: the profile's), peers' too."""
    dev = torch.device(device)
    name = pick_profile("quick" if quick else None, default="full" if dev.type == "cuda" else "cpu")
    rows, details, n, clock = [], {"section_s": {}}, 1 if quick else 10, _Clock()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_sample(tmp / "sample", n_pairs=40, size=64) if quick else Path(data_root or make_sample())
        settings = (QUICK if quick else {}) | ({} if zoom_out is None else {"zoom_out": zoom_out})
        config, (pairs, _) = make_config(name, device=device, **settings), find_pairs(root)
        kwargs = {"profile": name, "data_root": str(root), "device": device} | settings
        if "data" in sections:
            data_rows, dataset = bench_data(pairs, config, 2 if quick else 150)
            rows += data_rows + bench_data_wait(kwargs)
            details["section_s"]["data"] = clock.lap()
        else:
            dataset = PairedImageDataset(pairs[: config.data.batch_size], config.g.image_size)
        if "step" in sections:
            batch = next(iter(DataLoader(dataset, batch_size=config.data.batch_size)))
            conv = (1, 32) if quick else (8, 128)
            step_rows, details["step"] = bench_step(config, dev, batch, n, conv, try_compile and not quick)
            rows += step_rows
            details["section_s"]["step"] = clock.lap()
        if "inference" in sections:
            generator, details["inference_generator"] = _generator(config.g, dev, quick)
            sizes = [(128, 96), (256, 192)] if quick else [(1024, 768), (3000, 2000)]
            inference_rows, details["inference_split_s"] = bench_inference(generator, pairs[0][0], sizes, n, tmp)
            rows += inference_rows
            if dev.type == "cpu":  # onnxruntime runs on the CPU here: beside torch on the same CPU
                rows += bench_onnx(generator, pairs[0][0], sizes, n, tmp)
            details["section_s"]["inference"] = clock.lap()
        if "quality" in sections:
            kwargs |= {"epochs": 1} if quick else {}
            quality_rows, details["time_to_quality"] = bench_quality(kwargs, LEVELS, 2 if quick else peer_seconds)
            rows += quality_rows
            details["section_s"]["quality"] = clock.lap()
    g = config.g
    shape = f"{g.image_size} px, batch {config.data.batch_size}, G {g.base_channels}-{g.max_channels} depth {g.depth}"
    meta = {"device": dev.type, "hardware": _hardware(dev), "threads": torch.get_num_threads(), "profile": name}
    meta |= {
        "config": f"{shape}, D {config.d.d_channels}, adversarial weight {config.adv_weight:g}, "
        f"zoom-out {config.data.zoom_out:g}",
        "torch": torch.__version__,
    }
    return {"meta": {**meta, "quick": quick}, "rows": [row.to_dict() for row in rows], "details": details}


class _Clock:
    """Seconds since it was made or last read: what each section of the bench cost."""

    def __init__(self):
        self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        return seconds


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
    if "inference_generator" in result["details"]:
        lines.append(f"inference with the generator: {result['details']['inference_generator']}")
    for size, parts in result["details"].get("inference_split_s", {}).items():
        lines.append(f"inference {size}, seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    sections = result["details"].get("section_s", {})
    if sections:
        total = sum(sections.values())
        lines.append(
            f"the bench's own time: {total:.0f} s (" + ", ".join(f"{k} {v:.0f}" for k, v in sections.items()) + ")"
        )
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
