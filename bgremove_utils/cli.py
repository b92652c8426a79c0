"""The command line, `python -m bgremove_utils COMMAND`: make the sample, download the Kaggle set,
train, evaluate, cut out pictures, and `demo`, the whole course end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .errors import BgRemoveError


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root", help="folder holding the photo and cut-out folders (default: the course's sample)"
    )
    parser.add_argument("--bg-path", help="folder of photos (with background); use with --no-bg-path")
    parser.add_argument("--no-bg-path", help="folder of cut-outs (no background), same file stems as --bg-path")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bgremove_utils", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("make-sample", help="write the course's paired sample data (offline, deterministic)")
    p.add_argument("--root", help="where to write it (default: data/sample)")
    p.add_argument("--n-pairs", type=int, default=600)
    p.add_argument("--size", type=int, default=256, help="side of each picture in pixels")
    p.add_argument("--seed", type=int, default=0)

    p = commands.add_parser("download", help="download the Kaggle data set (needs a Kaggle API token)")
    p.add_argument("--dest", help="where to put it (default: data/kaggle)")
    p.add_argument("--force", action="store_true", help="download again even if it is there")

    p = commands.add_parser("train", help="train the GAN; checkpoints go to --checkpoint-dir")
    p.add_argument(
        "--profile", choices=["full", "cpu", "quick"], help="default: full on CUDA, cpu otherwise, or $BGREMOVE_PROFILE"
    )
    _add_data_args(p)
    for name, kind in (
        ("epochs", int),
        ("batch-size", int),
        ("image-size", int),
        ("lr-g", float),
        ("lr-d", float),
        ("l1-weight", float),
        ("num-workers", int),
        ("seed", int),
    ):
        p.add_argument(f"--{name}", type=kind, help="overrides the profile's value")
    p.add_argument("--device", help="auto (default), cuda, mps or cpu")
    p.add_argument("--checkpoint-dir", help="default: checkpoints/")
    p.add_argument("--resume", action="store_true", help="carry on from checkpoint-dir/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")

    p = commands.add_parser("evaluate", help="metrics of a checkpoint on a split, beside the trivial baseline")
    p.add_argument("--checkpoint", help="default: checkpoints/best.pt")
    _add_data_args(p)
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument("--device", help="auto (default), cuda, mps or cpu")

    p = commands.add_parser("predict", help="cut out one picture, or every picture of a folder, to RGBA PNG")
    p.add_argument("input", help="a picture or a folder of pictures")
    p.add_argument("output", help="the PNG to write (a name ending in .png), or a folder")
    p.add_argument("--checkpoint", help="default: checkpoints/best.pt")
    p.add_argument("--device", help="auto (default), cuda, mps or cpu")
    p.add_argument(
        "--no-refine",
        action="store_true",
        help="the plain export: the network's matte upsampled bilinearly and the photo's own colours, "
        "without the refinement at the photo's resolution (edges that follow the photo, decontaminated colours)",
    )

    p = commands.add_parser("demo", help="the whole course end to end on the sample, in a few minutes")
    p.add_argument("--profile", choices=["full", "cpu", "quick"], help="default: cpu (quick when $CI is set)")
    p.add_argument("--epochs", type=int, help="overrides the profile's number of epochs")
    p.add_argument("--out", help="where to put the results (default: outputs/demo)")
    p.add_argument("--checkpoint-dir", help="default: checkpoints/")

    p = commands.add_parser("bench", help="speed beside plain baselines: data, training step, inference, time to IoU")
    p.add_argument("--quick", action="store_true", help="tiny sizes, a few iterations: checks it runs, not the speed")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="also write the table and details as JSON")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cpu, and cuda too when there is a GPU")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    p.add_argument("--data-root", help="the sample pairs to use (default: the course's sample)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant (minutes of compiling)")
    p.add_argument("--max-train-seconds", type=float, default=600.0, help="cap of the plain time-to-quality run")
    p.add_argument("--only", nargs="+", choices=["data", "step", "inference", "quality"], help="default: all four")
    return parser


def _cmd_make_sample(args) -> None:
    from .sample import make_sample

    start = time.perf_counter()
    root = make_sample(args.root, n_pairs=args.n_pairs, size=args.size, seed=args.seed)
    print(f"Sample of {args.n_pairs} pairs in {root} ({time.perf_counter() - start:.1f} s)")


def _cmd_download(args) -> None:
    from .data import download_kaggle

    print(f"Kaggle data set in {download_kaggle(args.dest, force=args.force)}")


def _cmd_train(args) -> None:
    from .distributed import is_main
    from .train import train

    overrides = {
        k: getattr(args, k)
        for k in (
            "epochs",
            "batch_size",
            "image_size",
            "lr_g",
            "lr_d",
            "l1_weight",
            "num_workers",
            "seed",
            "device",
            "checkpoint_dir",
            "data_root",
            "bg_path",
            "no_bg_path",
        )
    }
    history = train(profile=args.profile, resume=args.resume, progress=not args.no_progress, **overrides)
    if history and is_main():  # under torchrun: said once, by rank 0
        last = history[-1]
        print(f"epoch {last['epoch']}: val IoU {last['val_iou']:.3f}, MAE {last['val_mae']:.3f}")


def _load_split(checkpoint: str | None, args, split: str):
    from .checkpoint import load_generator
    from .data import make_loaders

    generator = load_generator(checkpoint, device=_device(args))
    loaders = make_loaders(
        args.data_root, args.bg_path, args.no_bg_path, image_size=generator.image_size, batch_size=32, augment=False
    )
    return generator, getattr(loaders, split)


def _device(args):
    from .config import resolve_device

    return resolve_device(getattr(args, "device", None) or "auto")


def print_metrics(results: dict) -> None:
    print(f"{'':10s} {'IoU':>6s} {'MAE':>6s} {'PSNR':>6s}")
    for name, m in results.items():
        print(f"{name:10s} {m['iou']:6.3f} {m['mae']:6.3f} {m['psnr']:6.2f}")


def _cmd_evaluate(args) -> None:
    from .metrics import evaluate

    generator, loader = _load_split(args.checkpoint, args, args.split)
    print(f"{args.split} split, {len(loader.dataset)} images:")
    print_metrics(evaluate(generator, loader))


def _cmd_predict(args) -> None:
    from .inference import process_and_generate, process_folder

    options = {"device": args.device, "refine": not args.no_refine}
    if Path(args.input).is_dir():
        report = process_folder(args.input, args.output, args.checkpoint, **options)
        if report.failed:
            sys.exit(1)
    else:
        print(f"wrote {process_and_generate(args.input, args.output, args.checkpoint, **options)}")


def _cmd_bench(args) -> None:
    from .bench import main as bench

    options = {"data_root": args.data_root, "try_compile": not args.no_compile, "max_train_s": args.max_train_seconds}
    options["sections"] = args.only or ("data", "step", "inference", "quality")
    bench(quick=args.quick, json_path=args.json_path, device=args.device, threads=args.threads, **options)


def _cmd_demo(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from .data import make_loaders
    from .inference import process_and_generate
    from .metrics import evaluate
    from .paths import default_checkpoint_dir, default_output_dir
    from .sample import make_sample
    from .train import train
    from .viz import predict_and_compare

    profile = args.profile or os.environ.get("BGREMOVE_PROFILE") or ("quick" if os.environ.get("CI") else "cpu")
    out = Path(args.out) if args.out else default_output_dir() / "demo"
    ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else default_checkpoint_dir()
    start = time.perf_counter()
    print(f"1/4 sample data in {make_sample()}")
    print(f"2/4 training, profile '{profile}'")
    history = train(profile=profile, checkpoint_dir=str(ckpt), epochs=args.epochs)
    from .checkpoint import load_generator

    generator = load_generator(ckpt / "best.pt")
    loaders = make_loaders(image_size=generator.image_size, batch_size=32, augment=False)
    results = evaluate(generator, loaders.test)
    print(f"3/4 test split, {len(loaders.test.dataset)} images:")
    print_metrics(results)
    cutouts = out / "cutouts"
    for photo, _ in loaders.test.dataset.pairs:
        process_and_generate(photo, cutouts / f"{photo.stem}.png", generator)
    figure = predict_and_compare(loaders.test, n_images=5, generator=generator, seed=0)
    out.mkdir(parents=True, exist_ok=True)
    figure.savefig(out / "predict_and_compare.png", dpi=80)
    (out / "metrics.json").write_text(json.dumps({"profile": profile, "epochs": len(history), **results}, indent=1))
    print(f"4/4 cut-outs of the test photos in {cutouts}")
    print(f"\nDone in {time.perf_counter() - start:.0f} s. Where everything is:")
    for label, path in (
        ("checkpoints", ckpt),
        ("sample predictions while training", ckpt / "samples"),
        ("test cut-outs (RGBA PNG)", cutouts),
        ("comparison figure", out / "predict_and_compare.png"),
        ("test metrics", out / "metrics.json"),
    ):
        print(f"  {label:34s} {path}")


COMMANDS = {
    "make-sample": _cmd_make_sample,
    "download": _cmd_download,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "predict": _cmd_predict,
    "demo": _cmd_demo,
    "bench": _cmd_bench,
}


def main(argv: list[str] | None = None) -> int:
    """Run one command: 0 when it worked, 2 with one `error: ...` line (no traceback) for any error
    the package raises on purpose, 130 on Ctrl-C."""
    for stream in (sys.stdout, sys.stderr):  # a file name the console cannot encode must not crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except BgRemoveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
