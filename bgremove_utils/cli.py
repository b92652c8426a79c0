"""The command line, `python -m bgremove_utils COMMAND`: make the sample, download the Kaggle set,
train, evaluate, cut out pictures, export the generator to ONNX, open the web page, and `demo`, the
whole course end to end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import matplotlib
from torch.utils.data import DataLoader

from .course.check import check_data
from .course.viz import predict_and_compare
from .data.course import GET_THE_REST, course_data_line, course_data_root, downloaded
from .data.dataset import new_photos_loader, split_loader
from .data.download import download_kaggle
from .data.pairs import data_roots, read_manifest
from .data.real import HALVES, real_loader
from .data.real_download import download_real
from .data.sample import make_sample
from .errors import BgRemoveError
from .evaluation.metrics import COLUMNS, evaluate, metrics_table
from .export.inference import process_and_generate, process_folder
from .export.onnx import OPSET, export_onnx
from .files import megabytes
from .models.checkpoint import load_checkpoint, load_generator, saved_config
from .paths import default_checkpoint_dir, default_output_dir, default_real_val_dir
from .settings import BEST_CHECKPOINT, PROFILES, pick_profile, resolve_device, settings
from .training.distributed import is_main
from .training.loop import train

DATA_SOURCE = ("data_root", "bg_path", "no_bg_path")  # the settings that say where the pairs are


def add_setting_flags(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """A flag for each training setting (or for those `names`), with its type and help text from
    the config's own field: `--lr-g`, `--depth`, `--augment/--no-augment`... None: the profile's."""
    for name, (_, field, kind) in settings().items():
        if names is not None and name not in names:
            continue
        flags = ["--" + alias.replace("_", "-") for alias in (name, field.metadata.get("alias")) if alias]
        text = field.metadata["help"]  # an earlier name (--l1-weight) is a second flag of the same setting
        if kind is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, help=text)
        elif kind is tuple:
            parser.add_argument(*flags, type=float, nargs=2, metavar=("FIRST", "SECOND"), help=text)
        else:
            choices = list(PROFILES) if name == "profile" else field.metadata.get("choices")
            parser.add_argument(*flags, type=kind, choices=choices, help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bgremove_utils", description=" ".join(__doc__.split()))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("make-sample", help="write the course's paired sample data (offline, deterministic)")
    p.add_argument("--root", help="where to write it (default: data/sample)")
    p.add_argument("--n-pairs", type=int, help="how many pairs (default: 600)")
    p.add_argument("--size", type=int, help="side of each picture in pixels (default: 256)")
    p.add_argument("--seed", type=int, help="seed of the drawing (default: 0)")

    p = commands.add_parser(
        "download",
        help="download the course's real photographs (real) or the Kaggle data set (kaggle, needs an API token)",
    )
    p.add_argument(
        "what",
        nargs="?",
        choices=["kaggle", "real"],
        default="kaggle",
        help="real: the portraits, fashion photos and horses the course may not ship, checked against their "
        "checksums (about 1,550 pairs, 40 MB); kaggle (default): Kaggle's data set of cut-outs",
    )
    p.add_argument("--dest", help="where to put it (default: data/ for real, data/kaggle for kaggle)")
    p.add_argument("--force", action="store_true", help="download again even if it is there")
    p.add_argument(
        "--url",
        help="real: where each source file is, a template of {repo}, {commit} and {path} (default: GitHub's raw files)",
    )

    p = commands.add_parser(
        "check-data", help="what a folder of pairs holds, before training on it: pairs, left out and why, masks, split"
    )
    p.add_argument("data_root", nargs="?", metavar="DIR", help="the folder of pairs (default: the course's sample)")
    add_setting_flags(p, ("bg_path", "no_bg_path"))
    p.add_argument("--n-images", type=int, default=6, help="how many pairs to draw, matte over photo (default: 6)")
    p.add_argument("--figure", help="where to save the drawing (default: outputs/check_data.png)")

    p = commands.add_parser(
        "train",
        help="train the GAN; checkpoints go to --checkpoint-dir",
        description="Train the GAN. Every setting not given is the profile's (default profile: full on CUDA, "
        "cpu otherwise, or $BGREMOVE_PROFILE).",
    )
    add_setting_flags(p)
    p.add_argument("--resume", action="store_true", help="carry on from checkpoint-dir/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")

    p = commands.add_parser("evaluate", help="metrics of a checkpoint on a split, beside the trivial baseline")
    p.add_argument("--checkpoint", help=f"default: checkpoints/{BEST_CHECKPOINT}")
    add_setting_flags(p, (*DATA_SOURCE, "device"))  # default: the data the checkpoint was trained on
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument(
        "--real",
        metavar="DIR",
        help="the real photographs with their masks (an L mask or an RGBA cut-out per stem) to score "
        "(default: the course's, data/real-val)",
    )
    p.add_argument(
        "--real-half",
        choices=HALVES,
        help="which half of the real photographs, split by a hash of each stem: choose (compare settings on it), "
        "report (only report it, never tune to it) or all (default: report for the course's, all for --real DIR)",
    )

    p = commands.add_parser("predict", help="cut out one picture, or every picture of a folder, to RGBA PNG")
    p.add_argument("input", help="a picture or a folder of pictures")
    p.add_argument("output", help="the PNG to write (a name ending in .png), or a folder")
    p.add_argument("--checkpoint", help=f"default: checkpoints/{BEST_CHECKPOINT}")
    add_setting_flags(p, ("device",))
    p.add_argument(
        "--no-refine",
        action="store_true",
        help="the plain export: the network's matte upsampled bilinearly and the photo's own colours, "
        "without the refinement at the photo's resolution (edges that follow the photo, decontaminated colours)",
    )

    p = commands.add_parser(
        "export-onnx",
        help="write the generator alone as an ONNX file, for onnxruntime (needs the app extra)",
        description="Write the generator of a checkpoint as an ONNX file: input 'photo' (B, 3, H, W) in [0, 1], "
        "output 'rgba' (B, 4, H, W); H and W multiples of 2**depth. predict --checkpoint OUT.onnx runs it.",
    )
    p.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--checkpoint", help=f"default: checkpoints/{BEST_CHECKPOINT}")
    p.add_argument("--opset", type=int, default=OPSET, help=f"the ONNX operator set (default: {OPSET})")

    p = commands.add_parser(
        "app", help="a web page on this computer that cuts out the photos you drop on it (needs the app extra)"
    )
    p.add_argument(
        "--checkpoint", help=f"a checkpoint, or an ONNX file of export-onnx (default: checkpoints/{BEST_CHECKPOINT})"
    )
    p.add_argument("--port", type=int, help="the local port (default: the first free one from 7860)")

    p = commands.add_parser(
        "demo", help="the whole course end to end on its real photographs: train, score, cut out, in minutes"
    )
    add_setting_flags(p, ("profile", "epochs", "checkpoint_dir"))  # default profile: cpu (quick when $CI is set)
    p.add_argument("--out", help="where to put the results (default: outputs/demo)")

    p = commands.add_parser("bench", help="speed beside plain baselines: data, training step, inference, time to IoU")
    p.add_argument("--quick", action="store_true", help="tiny sizes, a few iterations: checks it runs, not the speed")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="also write the table and details as JSON")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cpu, and cuda too when there is a GPU")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    p.add_argument("--data-root", help="the sample pairs to use (default: the course's sample)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant (minutes of compiling)")
    p.add_argument("--peer-seconds", type=float, help="each peer's training seconds in the time to quality (45)")
    zoom = PROFILES["cpu"].data.zoom_out
    p.add_argument(
        "--zoom-out", type=float, help=f"the training pictures' zoom-out, the peers' too (default: {zoom:g})"
    )
    p.add_argument("--only", nargs="+", choices=["data", "step", "inference", "quality"], help="default: all four")
    return parser


def _cmd_make_sample(args) -> None:
    start = time.perf_counter()
    given = {name: getattr(args, name) for name in ("n_pairs", "size", "seed") if getattr(args, name) is not None}
    root = make_sample(args.root, **given)  # make_sample's own defaults for the rest
    n_pairs = sum(len(stems) for stems in read_manifest(root)["split"].values())
    print(f"Sample of {n_pairs} pairs in {root} ({time.perf_counter() - start:.1f} s)")


def _cmd_download(args) -> None:
    if args.what == "kaggle":
        print(f"Kaggle data set in {download_kaggle(args.dest, force=args.force)}")
        return
    result = download_real(args.dest, **({"url": args.url} if args.url else {}), force=args.force)
    print(result.summary())
    if result.failed:
        sys.exit(1)


def _cmd_check_data(args) -> None:
    matplotlib.use("Agg")  # the figure is saved, never shown
    path = Path(args.figure) if args.figure else default_output_dir() / "check_data.png"
    check_data(args.data_root, args.bg_path, args.no_bg_path, n_images=args.n_images, figure_path=path)
    print(f"Pairs drawn with their mattes over the photo: {path}")


def _cmd_train(args) -> None:
    given = {name: getattr(args, name) for name in settings() if getattr(args, name) is not None}  # None: not given
    given = {name: tuple(value) if isinstance(value, list) else value for name, value in given.items()}
    history = train(resume=args.resume, progress=not args.no_progress, **given)
    if history and is_main():  # under torchrun: said once, by rank 0
        last = history[-1]
        print(f"epoch {last['epoch']}: val IoU {last['val_iou']:.3f}, MAE {last['val_mae']:.3f}; the validation split:")
        scores = {key: last[f"val_{key}"] for _, key, _ in COLUMNS}
        print(metrics_table({"validation": {"model": scores}}))


def _load_split(args):
    """The checkpoint's generator, the data it was trained on (unless the arguments name other
    data) and the loader of that data's `args.split`."""
    path = Path(args.checkpoint) if args.checkpoint else default_checkpoint_dir() / BEST_CHECKPOINT
    generator = load_generator(path, device=resolve_device(args.device or "auto"))
    data = saved_config(load_checkpoint(path), path).data
    if any(getattr(args, name) for name in DATA_SOURCE):
        data = replace(data, **{name: getattr(args, name) for name in DATA_SOURCE})
    return generator, data, split_loader(data, generator.config.image_size, args.split)


def scored_splits(size: int, data_root: str | None, split: tuple[str, DataLoader], real: str | None, half: str | None):
    """What `evaluate` scores, by name: the `split` (name, loader) of the training pairs; `new_photos`
    where those pairs include the drawn sample (a folder with the course's manifest); and the real
    test photographs of `real` (default: the course's data/real-val, its report half; a folder of
    one's own whole, unless `half` says): `real_report_half`, `real_all`..."""
    splits = dict([split])
    if data_root and any(read_manifest(root) for root in data_roots(data_root)):
        splits["new_photos"] = new_photos_loader(size)
    half = half or ("all" if real else "report")
    name = "real_all" if half == "all" else f"real_{half}_half"
    return splits | {name: real_loader(Path(real) if real else default_real_val_dir(), size, half)}


def _cmd_evaluate(args) -> None:
    generator, data, loader = _load_split(args)
    size = generator.config.image_size
    splits = scored_splits(size, data.data_root, (args.split, loader), args.real, args.real_half)
    print(", ".join(f"{name}: {len(ld.dataset)} pictures" for name, ld in splits.items()) + f", at {size} px")
    print(metrics_table({name: evaluate(generator, ld) for name, ld in splits.items()}))


def _cmd_predict(args) -> None:
    options = {"device": args.device, "refine": not args.no_refine}
    if Path(args.input).is_dir():
        report = process_folder(args.input, args.output, args.checkpoint, **options)
        if report.failed:
            sys.exit(1)
    else:
        print(f"wrote {process_and_generate(args.input, args.output, args.checkpoint, **options)}")


def _cmd_export_onnx(args) -> None:
    path = export_onnx(args.checkpoint, args.output, opset=args.opset)
    print(
        f"wrote {path} ({megabytes(path.stat().st_size)}); cut out with it: "
        f"python -m bgremove_utils predict PHOTO OUT.png --checkpoint {path}"
    )


def _cmd_app(args) -> None:
    from .course.app import serve  # only here: Gradio is an optional extra, and slow to import

    serve(args.checkpoint, port=args.port)


def _cmd_bench(args) -> None:
    from .bench import main as bench  # only here: torch.utils.benchmark is slow to import, and may warn about CUDA

    options = {
        "data_root": args.data_root,
        "try_compile": not args.no_compile,
    }
    options |= {"peer_seconds": args.peer_seconds} if args.peer_seconds else {}
    options |= {"zoom_out": args.zoom_out} if args.zoom_out is not None else {}
    options["sections"] = args.only or ("data", "step", "inference", "quality")
    bench(quick=args.quick, json_path=args.json_path, device=args.device, threads=args.threads, **options)


def _cmd_demo(args) -> None:
    matplotlib.use("Agg")  # figures are saved, never shown
    profile = pick_profile(args.profile, default="cpu")  # $BGREMOVE_PROFILE (quick under CI) comes first
    out = Path(args.out) if args.out else default_output_dir() / "demo"
    ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else default_checkpoint_dir()
    start = time.perf_counter()
    data_root = course_data_root()
    print(f"1/4 {course_data_line()}")
    print(f"2/4 training, profile '{profile}'")
    epochs = {"epochs": args.epochs} if args.epochs else {}
    history = train(profile=profile, checkpoint_dir=str(ckpt), data_root=data_root, **epochs)
    generator = load_generator(ckpt / BEST_CHECKPOINT)
    size = generator.config.image_size
    splits = scored_splits(size, data_root, ("test", split_loader(data_root, size, "test")), None, None)
    real = splits["real_report_half"]
    print(f"3/4 scores beside a colour threshold; the real photographs ({len(real.dataset)}) were never trained on:")
    results = {name: evaluate(generator, loader) for name, loader in splits.items()}
    print(metrics_table(results))
    cutouts = out / "cutouts"
    for photo, _ in real.dataset.pairs:
        process_and_generate(photo, cutouts / f"{photo.stem}.png", generator)
    figure = predict_and_compare(real, n_images=5, generator=generator, seed=0)
    out.mkdir(parents=True, exist_ok=True)
    figure.savefig(out / "predict_and_compare.png", dpi=80)
    (out / "metrics.json").write_text(json.dumps({"profile": profile, "epochs": len(history), **results}, indent=1))
    print(f"4/4 cut-outs of the real test photographs in {cutouts}")
    print(f"\nDone in {time.perf_counter() - start:.0f} s. Where everything is:")
    for label, path in (
        ("checkpoints", ckpt),
        ("sample predictions while training", ckpt / "samples"),
        ("cut-outs of real photos (RGBA PNG)", cutouts),
        ("comparison figure", out / "predict_and_compare.png"),
        ("metrics", out / "metrics.json"),
    ):
        print(f"  {label:34s} {path}")
    if not downloaded():
        print(f"\nThe rest of the course's real photographs (portraits, fashion photos, horses): {GET_THE_REST}")


COMMANDS = {
    "make-sample": _cmd_make_sample,
    "download": _cmd_download,
    "check-data": _cmd_check_data,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "predict": _cmd_predict,
    "export-onnx": _cmd_export_onnx,
    "app": _cmd_app,
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
