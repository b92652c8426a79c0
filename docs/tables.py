"""Fill the measured numbers of README.md and docs/*.md from the JSON files in docs/results/.

    python docs/tables.py           rewrite every block from the JSON
    python docs/tables.py --check   change nothing; exit 1 and name each block that is stale

A block is `<!-- table: NAME -->...<!-- /table -->`: what lies between the two markers is replaced
by what RENDERERS[NAME] returns, a markdown table (the markers then stand on lines of their own) or
a few words inside a sentence (inline). A number measured into a JSON file is written only here,
never by hand in a page. Means are over random seeds, with the sample standard deviation (n - 1).
"""

import json
import re
import statistics
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
RESULTS = DOCS / "results"

# The `cpu` profile's own runs in real_pairs.json, as it stands (zoom-out 0.3, adversarial weight 10): what the
# pages quote as its numbers; and its real pairs without the adversarial term.
PROFILE_RUNS = {"sample": "sample_z_adv10", "real": "adv10_z", "real_nogan": "real_nogan_z"}
# The same runs with the adversarial term ten times quieter (`--adv-weight 1`).
QUIETER_RUNS = {"sample": "sample_z", "real": "real_z"}
# The runs of real_pairs.json shown in docs/real-photos.md, in this order, with their labels.
# A name missing from the file is an error that names it (no silent "not measured").
REAL_PAIRS_RUNS = {
    PROFILE_RUNS["sample"]: "the course's sample only (the `cpu` profile)",
    PROFILE_RUNS["real"]: "the real pairs (`--data-root DIR`)",
    PROFILE_RUNS["real_nogan"]: "the real pairs, without the GAN (`--adv-weight 0`)",
    QUIETER_RUNS["real"]: "the real pairs, the adversarial term ten times quieter (`--adv-weight 1`)",
    "mixed_z": "the sample and the real pairs in one folder (the `cpu` profile)",
    "sample": "the course's sample only, without zoom-out (`--zoom-out 1`)",
    "real": "the real pairs, without zoom-out",
    "real_nogan": "the real pairs, without zoom-out or the GAN",
    "pretrain": "the sample for 375 steps, then the real pairs for 375, without zoom-out",
    "mixed": "the sample and the real pairs in one folder, without zoom-out",
}
# The runs that chose the `cpu` profile's settings for real pairs, one random seed each, compared on
# the choose half (data/real.py): what each changes from the first.
REAL_PAIRS_CHOICES = {
    "e11": "360 steps (11 epochs), with the builtin unlabelled photos",
    "e11_nounl": "360 steps, without unlabelled photos",
    "e11_nounl_noadv": "360 steps, without unlabelled photos or the GAN",
    "e11_nounl_comp": "360 steps, without unlabelled photos, cut-outs on new backgrounds (`--composite`, taken out)",
    "r96_nounl": "360 steps, without unlabelled photos, at 96 pixels",
    "real": "750 steps (22 epochs), without unlabelled photos",
    "zoom50_mirror": "750 steps, half the pictures zoomed out to 0.5-1 of their side, the frame mirrored",
    "zoom50_border": "750 steps, zoomed out to 0.5-1 of their side, the frame continuing the edges (`--zoom-out 0.5`)",
    "zoom30_border": "750 steps, zoomed out to 0.3-1 of their side (`--zoom-out 0.3`): the `cpu` profile's settings",
}
# Whole runs of the `cpu` profile (without zoom-out) with each warm-up share (docs/performance.md): {share: run}.
WARMUP_RUNS = {"real pairs": {"15%": "real", "5%": "real_w05"}, "sample": {"15%": "sample", "5%": "sample_w05"}}

# The report half's kinds of photograph, as real_pairs.json names them, and as the pages call them.
REAL_SPLITS = {
    "report/all": "all",
    "report/portrait": "portraits",
    "report/davis": "video frames",
    "report/horse": "horses",
}
OPEN = r"(?<!`)<!-- table: "  # a marker quoted in backticks is prose about the markers, not a block
BLOCK = re.compile(OPEN + r"(\w+) -->(.*?)<!-- /table -->", re.S)


def load(results_dir: Path = RESULTS) -> dict:
    """Every JSON file of docs/results/, by its name without `.json`."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(results_dir.glob("*.json"))}


# -- formatting ---------------------------------------------------------------------------------


def num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def mean_sd(values: list[float], digits: int = 3) -> str:
    """0.742 ± 0.013 over several seeds; the value alone for one."""
    if len(values) == 1:
        return num(values[0], digits)
    return f"{num(statistics.mean(values), digits)} ± {num(statistics.stdev(values), digits)}"


def span(values: list[float], digits: int = 2) -> str:
    low, high = num(min(values), digits), num(max(values), digits)
    return low if low == high else f"{low}-{high}"


def signed(values: list[float], digits: int = 3, unit: str = "") -> str:
    parts = [f"{x:+.{digits}f}{unit}" for x in values]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def percent(new: float, old: float) -> str:
    change = abs(new / old - 1)
    return f"{change:.{0 if change >= 0.01 else 1}%} {'more' if new > old else 'fewer'}"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


# -- the cpu profile over 3 random seeds (cpu_profile_3_seeds.json) -----------------------------

ARMS = {  # the arms of cpu_profile_3_seeds.json, as the tables call them
    "after": "GAN (`--steps 360 --unlabelled builtin --zoom-out 1 --adv-weight 1`)",
    "before": "colours resampled as stored (dark halos)",
    "nogan": "no GAN (the same with `--adv-weight 0`)",
}


def seeds(results: dict, arm: str) -> list[dict]:
    """The runs of one arm ("after": the profile, "before": colours resampled as stored, "nogan"), by seed."""
    runs = results["cpu_profile_3_seeds"]["runs"][arm]
    return [runs[seed] for seed in sorted(runs, key=int)]


def metric(runs: list[dict], split: str, name: str) -> list[float]:
    return [run[split][name] for run in runs]


def same_in_every_run(results: dict, what: str, get) -> float:
    """A value of real_pairs.json that does not depend on the run (the baseline's, a split's size), of the
    runs at the profile's 64 pixels (the baseline is scored at each run's own size)."""
    values = {get(run) for run in results["real_pairs"] if "image_size" not in run["settings"]}  # at 64 px
    if len(values) != 1:
        raise ValueError(f"real_pairs.json: {what} differs between runs: {sorted(values)}")
    return values.pop()


def baseline(results: dict, split: str, name: str = "iou") -> float:
    """The border-colour baseline's score on a split of real_pairs.json."""
    return same_in_every_run(results, f"the baseline's {split} {name}", lambda r: r["scores"][split]["baseline"][name])


def pictures(results: dict, split: str) -> str:
    return f"{same_in_every_run(results, f'the size of {split}', lambda r: r['scores'][split]['n'])} pictures"


def cpu_profile(results: dict) -> str:
    """The `cpu` profile trained on the sample and on the real pairs (real_pairs.json), beside the baseline."""
    rows = []
    for name, label in ((PROFILE_RUNS["sample"], "the course's sample"), (PROFILE_RUNS["real"], "1,393 real pairs")):
        runs = real_runs(results, name)
        rows.append(
            [
                f"`cpu` profile on {label}, {len(runs)} random seeds",
                mean_sd(real(runs, "test")),
                mean_sd(real(runs, "new_photos")),
                mean_sd(real(runs, "report/all")),
                mean_sd(real(runs, "report/all", "holes"), 2),
                f"{span([r['train_s'] / 60 for r in runs], 1)} min",
            ]
        )
    rows.append(
        [
            "border-colour baseline",
            "(notebook 4 prints it)",
            num(baseline(results, "new_photos")),
            num(baseline(results, "report/all")),
            num(baseline(results, "report/all", "holes"), 2),
            "",
        ]
    )
    header = ["", "its own test split IoU", "new-photos IoU", "real IoU, report half", "real Holes", "training"]
    return table(header, rows)


def premultiplied(results: dict) -> str:
    rows = []
    for arm, label in (("before", ARMS["before"]), ("after", "premultiplied (the course's)")):
        runs = seeds(results, arm)
        rows.append(
            [
                label,
                mean_sd(metric(runs, "test", "iou")),
                mean_sd(metric(runs, "new_photos", "iou")),
                mean_sd(metric(runs, "real-report", "iou")),
                mean_sd(metric(runs, "real-report", "holes"), 2),
                mean_sd(metric(runs, "real-report", "sad"), 0),
                mean_sd(metric(runs, "real-choose", "iou")),
            ]
        )
    header = ["augmentation", "test IoU", "new-photos IoU", "report IoU", "report Holes", "report SAD", "choose IoU"]
    return table(header, rows)


def premultiplied_per_seed(results: dict) -> str:
    before, after = seeds(results, "before"), seeds(results, "after")

    def moved(split: str, name: str) -> list[float]:
        return [a - b for a, b in zip(metric(after, split, name), metric(before, split, name))]

    holes = [a / b - 1 for a, b in zip(metric(after, "real-report", "holes"), metric(before, "real-report", "holes"))]
    mean_holes = statistics.mean(metric(after, "real-report", "holes")) / statistics.mean(
        metric(before, "real-report", "holes")
    )
    return (
        f"the test IoU moved by {signed(moved('test', 'iou'))}, the report half's IoU by "
        f"{signed(moved('real-report', 'iou'))}, and its holes by {signed([100 * h for h in holes], 0, '%')} "
        f"({mean_holes - 1:+.0%} on the mean)"
    )


def gan_vs_nogan(results: dict) -> str:
    header = ["run", "random seed", "D's BCE, last third", "test IoU", "new-photos IoU", "real IoU, report half"]
    header += ["real IoU, choose half", "real Holes, report half", "real Conn, report half", "training"]
    rows = []
    for arm in ("after", "nogan"):
        runs, label = seeds(results, arm), ARMS[arm]
        seed_names = sorted(results["cpu_profile_3_seeds"]["runs"][arm], key=int)
        columns = [
            ([r["d_bce_last_third"] for r in runs], 3),
            (metric(runs, "test", "iou"), 3),
            (metric(runs, "new_photos", "iou"), 3),
            (metric(runs, "real-report", "iou"), 3),
            (metric(runs, "real-choose", "iou"), 3),
            (metric(runs, "real-report", "holes"), 2),
            (metric(runs, "real-report", "conn"), 0),
        ]
        times = [r["trained_seconds"] for r in runs]
        for i, seed in enumerate(seed_names):
            rows.append([label, seed, *(num(values[i], digits) for values, digits in columns), minutes(times[i])])
        means = [mean_sd(values, digits) for values, digits in columns]
        rows.append([f"**{label}, mean ± sd**", "", *means, minutes(statistics.mean(times))])
    return table(header, rows)


def gan_verdict(results: dict) -> str:
    gan, nogan = seeds(results, "after"), seeds(results, "nogan")

    def mean(runs: list[dict], split: str, name: str) -> float:
        return statistics.mean(metric(runs, split, name))

    per_seed = [a - b for a, b in zip(metric(gan, "real-report", "iou"), metric(nogan, "real-report", "iou"))]
    return (
        f"real IoU {num(mean(gan, 'real-report', 'iou'))} against {num(mean(nogan, 'real-report', 'iou'))} "
        f"without the GAN (per seed {signed(per_seed)}), "
        f"holes {percent(mean(gan, 'real-report', 'holes'), mean(nogan, 'real-report', 'holes'))}, "
        f"Conn {percent(mean(gan, 'real-report', 'conn'), mean(nogan, 'real-report', 'conn'))}; "
        f"on the sample's test split {num(mean(gan, 'test', 'iou'))} against {num(mean(nogan, 'test', 'iou'))}; "
        f"on the choose half {num(mean(gan, 'real-choose', 'iou'))} against "
        f"{num(mean(nogan, 'real-choose', 'iou'))}, holes "
        f"{percent(mean(gan, 'real-choose', 'holes'), mean(nogan, 'real-choose', 'holes'))}"
    )


def d_learns(results: dict) -> str:
    runs = seeds(results, "after")
    return (
        f"its loss over the last third of training lies at {span([r['d_bce_last_third'] for r in runs], 3)} "
        f"in the {len(runs)} runs (log 2 = 0.693 is chance), scoring true cut-outs "
        f"{span([r['d_real'] for r in runs])}, G's {span([r['d_fake'] for r in runs])} and G's cut-outs "
        f"of the unlabelled photos {span([r['d_unlabelled'] for r in runs])}; the adversarial term pulls on G "
        f"with {span([100 * r['adv_share_last_third'] for r in runs], 0)}% of the reconstruction terms' strength"
    )


# -- real training pairs (real_pairs.json) ------------------------------------------------------


def real_runs(results: dict, name: str) -> list[dict]:
    runs = sorted((r for r in results["real_pairs"] if r["name"] == name), key=lambda r: r["seed"])
    if not runs:
        found = sorted({r["name"] for r in results["real_pairs"]})
        raise KeyError(f"docs/results/real_pairs.json has no run named {name!r} (it has {found}): edit REAL_PAIRS_RUNS")
    return runs


def real(runs: list[dict], split: str, name: str = "iou") -> list[float]:
    return [r["scores"][split]["model"][name] for r in runs]


def real_pairs(results: dict) -> str:
    header = ["run", "random seeds", *(f"IoU, {label}" for label in REAL_SPLITS.values()), "Conn", "Holes", "training"]
    rows = []
    for name, label in REAL_PAIRS_RUNS.items():
        runs = real_runs(results, name)
        ious = [mean_sd(real(runs, split)) for split in REAL_SPLITS]
        conn, holes = mean_sd(real(runs, "report/all", "conn"), 0), mean_sd(real(runs, "report/all", "holes"), 2)
        train = f"{span([r['train_s'] / 60 for r in runs], 1)} min"
        rows.append([label, ", ".join(str(r["seed"]) for r in runs), *ious, conn, holes, train])
    base = [num(baseline(results, split)) for split in REAL_SPLITS]
    conn, holes = num(baseline(results, "report/all", "conn"), 0), num(baseline(results, "report/all", "holes"), 2)
    rows.append(["border-colour baseline", "", *base, conn, holes, ""])
    return table(header, rows)


def real_pairs_choices(results: dict) -> str:
    header = ["run", "random seed", "IoU, choose half", "portraits", "video frames", "horses", "Holes", "training"]
    rows = []
    for name, label in REAL_PAIRS_CHOICES.items():
        run = real_runs(results, name)[0]
        ious = [num(run["scores"][f"choose/{kind}"]["model"]["iou"]) for kind in ("all", "portrait", "davis", "horse")]
        holes = num(run["scores"]["choose/all"]["model"]["holes"], 2)
        rows.append([label, str(run["seed"]), *ious, holes, minutes(run["train_s"])])
    return table(header, rows)


def gan_seeds(results: dict) -> str:
    """The GAN against the same training without it, over random seeds, on the sample and on real pairs."""
    header = ["trained on", "run", "its own test split IoU", "new-photos IoU", "real photographs IoU"]
    header += ["real photographs Holes", "D's loss, last third", "training"]
    rows = []
    for arm, label in (("after", "GAN, `--adv-weight 1`"), ("nogan", "no GAN")):
        runs = seeds(results, arm)
        rows.append(
            [
                "the sample (`--steps 360 --unlabelled builtin --zoom-out 1`)",
                label,
                mean_sd(metric(runs, "test", "iou")),
                mean_sd(metric(runs, "new_photos", "iou")),
                mean_sd(metric(runs, "real-report", "iou")),
                mean_sd(metric(runs, "real-report", "holes"), 2),
                mean_sd([r["d_bce_last_third"] for r in runs]),
                minutes(statistics.mean(r["trained_seconds"] for r in runs)),
            ]
        )
    real_arms = [
        (PROFILE_RUNS["real"], "GAN (the profile's `--adv-weight 10`)"),
        (QUIETER_RUNS["real"], "GAN, `--adv-weight 1`"),
    ]
    for name, label in [*real_arms, (PROFILE_RUNS["real_nogan"], "no GAN")]:
        runs = real_runs(results, name)
        rows.append(
            [
                "real pairs (`--data-root DIR`)",
                label,
                mean_sd(real(runs, "test")),
                mean_sd(real(runs, "new_photos")),
                mean_sd(real(runs, "report/all")),
                mean_sd(real(runs, "report/all", "holes"), 2),
                mean_sd([r["loss_d_last_third"] for r in runs]),
                minutes(statistics.mean(r["train_s"] for r in runs)),
            ]
        )
    return table(header, rows)


# -- the bench's time to quality (bench_*.json, written by `bench --json`) ------------------------


def figure(value: float | None) -> str:
    """A benchmark figure with three significant digits or so, as its printed table gives it."""
    if value is None:
        return ""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def bench_table(results: dict, name: str, only: str = "") -> str:
    """Every row of one `bench --json` but the time to quality's (`time_to_quality` has them), or
    only those whose name starts with `only`, as the benchmark prints them: our figure, the plain
    one's, the ratio and the target, met or not."""
    run = results[name]["runs"][0]
    rows = []
    for row in run["rows"]:
        if row["name"].startswith("IoU ") or not row["name"].startswith(only):
            continue
        verdict = {True: ": met", False: ": missed", None: ""}[row["met"]] if row["target"] else ""
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] else ""
        label = f"&nbsp; {row['name'].strip()}" if row["name"].startswith(" ") else row["name"]  # a variant
        rows.append([label, row["unit"], figure(row["ours"]), figure(row["plain"]), ratio, row["target"] + verdict])
    meta = run["meta"]
    return table(["measure", "unit", "ours", "plain", "ratio", "target"], rows) + (
        f"\n\n{meta['hardware']}, {meta['threads']} threads, torch {meta['torch']}; profile `{meta['profile']}`, "
        f"{meta['config']}; the bench's sections took "
        + ", ".join(f"{k} {v:.0f} s" for k, v in run["details"]["section_s"].items() if k != "quality")
        + "."
    )


def time_to_quality(results: dict, name: str) -> str:
    """Seconds of training to each validation IoU level, ours beside each peer's with the ratio (or
    its bound where the peer never got there), from the rows and histories of one `bench --json`."""
    run = results[name]["runs"][0]
    details, peers = run["details"]["time_to_quality"], {}
    for row in run["rows"]:
        if row["name"].startswith("IoU "):
            level, peer = row["name"][len("IoU ") :].split(": ")
            peers.setdefault(peer, []).append(row)
    first = next(iter(peers.values()))  # each peer's rows: one per level, then its best IoU
    levels = [row["name"].split(": ")[0][len("IoU ") :] for row in first[:-1]]

    def peer_cell(row: dict, peer: str) -> str:
        if row["plain"] is not None:
            return f"{row['plain']:.0f} s: {row['ratio']:.2f}x"
        trained, best = details[peer]["trained_s"], max(r["val_iou"] for r in details[peer]["history"])
        bound = f": >= {trained / row['ours']:.1f}x" if row["ours"] else ""
        return f"not reached in {trained:.0f} s (best {best:.3f}){bound}"

    rows = []
    for i, level in enumerate(levels):
        ours = first[i]["ours"]
        cells = [peer_cell(row[i], peer) for peer, row in peers.items()]
        rows.append([level, f"{ours:.0f} s" if ours else "not reached", *cells])
    meta = run["meta"]
    header = ["validation IoU", f"ours (`{meta['profile']}`)", *peers]
    return table(header, rows) + (
        f"\n\n{meta['hardware']}, {meta['threads']} threads, torch {meta['torch']}; {meta['config']}; "
        f"ours trained {details['ours']['trained_s']:.0f} s, each peer up to "
        f"{max(details[p]['trained_s'] for p in peers):.0f} s."
    )


# -- the warm-up's share (warmup_time_to_quality.json, real_pairs.json) ----------------------------


def warmup_time_to_quality(results: dict) -> str:
    """Seconds to each validation IoU level for each warm-up share: the mean over seeds, then each seed's."""
    runs, rows = results["warmup_time_to_quality"], []
    levels = list(runs[0]["reach"])
    for zoom_out, warmup in sorted({(r["zoom_out"], r["warmup"]) for r in runs}, key=lambda k: (-k[0], k[1])):
        same = (r for r in runs if (r["zoom_out"], r["warmup"]) == (zoom_out, warmup))
        chosen = sorted(same, key=lambda r: r["seed"])
        cells = []
        for level in levels:
            times = [r["reach"][level] for r in chosen]
            each = ", ".join("-" if t is None else f"{t:.0f}" for t in times)
            known = [t for t in times if t is not None]
            mean = f"{statistics.mean(known):.0f} s" if len(known) == len(times) else "not every seed"
            cells.append(mean if len(times) == 1 else f"{mean} ({each})")
        zoom = "none (`--zoom-out 1`)" if zoom_out == 1 else f"{zoom_out:g}"
        rows.append([zoom, f"{warmup:.0%}", ", ".join(str(r["seed"]) for r in chosen), *cells])
    return table(["zoom-out", "warm-up", "random seeds", *(f"to {level}" for level in levels)], rows)


def warmup_whole_runs(results: dict) -> str:
    """Whole `cpu` runs with each warm-up: the real pairs on the report half, the sample on its test split."""
    rows = []
    for folder, split, pairs in (
        ("the real pairs", "report/all", WARMUP_RUNS["real pairs"]),
        ("the course's sample", "test", WARMUP_RUNS["sample"]),
    ):
        for warmup, name in pairs.items():
            runs = real_runs(results, name)
            rows.append(
                [
                    folder,
                    warmup,
                    ", ".join(str(r["seed"]) for r in runs),
                    mean_sd(real(runs, split)),
                    mean_sd([r["val_iou"] for r in runs]),
                    f"{span([r['train_s'] / 60 for r in runs], 1)} min",
                ]
            )
    header = ["trained on", "warm-up", "random seeds", "IoU: report half or test split", "validation IoU", "training"]
    return table(header, rows)


def mixed_new_photos(results: dict) -> str:
    """The sample's new-photos split, scored by the models of the sample, the real pairs and the two mixed,
    with the profile's zoom-out."""
    names = (PROFILE_RUNS["sample"], PROFILE_RUNS["real"], "mixed_z")
    sample, real_pairs, mixed = (real(real_runs(results, n), "new_photos") for n in names)
    return (
        f"{mean_sd(mixed)} on the sample's new-photos split, against {mean_sd(sample)} trained on the sample "
        f"alone and {mean_sd(real_pairs)} on the real pairs alone"
    )


def gan_two_scales(results: dict) -> str:
    """D at two scales on the real pairs, beside one scale and no GAN, the same random seed (choose half)."""
    runs = {name: real_runs(results, name)[0] for name in ("d_scales2", "real", "real_nogan")}
    seed = runs["d_scales2"]["seed"]
    if any(run["seed"] != seed for run in runs.values()):
        raise ValueError("docs/results/real_pairs.json: d_scales2, real and real_nogan must share their first seed")
    iou = {name: num(run["scores"]["choose/all"]["model"]["iou"]) for name, run in runs.items()}
    holes = {name: num(run["scores"]["choose/all"]["model"]["holes"], 2) for name, run in runs.items()}
    return (
        f"IoU {iou['d_scales2']} on the choose half against {iou['real']} with one scale and {iou['real_nogan']} "
        f"without the GAN (Holes {holes['d_scales2']}, {holes['real']} and {holes['real_nogan']}; random seed {seed})"
    )


def refine_real(results: dict) -> str:
    """The export on real photographs at their own size, bilinear or refined, over the profile's real-pairs models."""
    runs = results["refine_real"]
    header = ["export", "models", *(f"IoU, {label}" for label in REAL_SPLITS.values()), "SAD", "Grad"]
    rows = []
    for refine, label in ((False, "bilinear (`--no-refine`)"), (True, "refined (the package)")):
        chosen = sorted((r for r in runs if r["refine"] == refine), key=lambda r: r["model"])
        ious = [mean_sd([r["scores"][split]["iou"] for r in chosen]) for split in REAL_SPLITS]
        errors = [mean_sd([r["scores"]["report/all"][key] for r in chosen], 0) for key in ("sad", "grad")]
        rows.append([label, ", ".join(r["model"] for r in chosen), *ious, *errors])
    return table(header, rows)


# The runs that tried augmentations meant to generalise beyond the training folder's kinds of subject,
# over 3 random seeds (docs/real-photos.md): {run: label}, the profile first.
AUGMENT_RUNS = {
    PROFILE_RUNS["real"]: "the `cpu` profile",
    "stretch2_z": "and pictures stretched up to 2:1 either way (`--stretch 2`)",
    "colour30_z": "and colours jittered (`--colour-jitter 0.3`)",
}


def real_pairs_augment(results: dict) -> str:
    """The augmentations tried over seeds: the choose half, on which they were judged, per kind of
    photograph, then the report half overall, and their training time."""
    kinds = {split.replace("report/", "choose/"): label for split, label in REAL_SPLITS.items()}
    header = ["run", "random seeds", *(f"choose half, {label}" for label in kinds.values()), "Holes, choose half"]
    header += ["report half, all", "training"]
    rows = []
    for name, label in AUGMENT_RUNS.items():
        runs = real_runs(results, name)
        ious = [mean_sd(real(runs, split)) for split in kinds]
        holes = mean_sd(real(runs, "choose/all", "holes"), 2)
        train = f"{span([r['train_s'] / 60 for r in runs], 1)} min"
        rows.append(
            [label, ", ".join(str(r["seed"]) for r in runs), *ious, holes, mean_sd(real(runs, "report/all")), train]
        )
    return table(header, rows)


# The kept models scored with and without the mirror image (mirror_real.json): {model name prefix: label}.
MIRROR_MODELS = {
    PROFILE_RUNS["real"]: "the real pairs (the `cpu` profile)",
    PROFILE_RUNS["real_nogan"]: "the real pairs, without the GAN",
    PROFILE_RUNS["sample"]: "the course's sample (the `cpu` profile)",
}


def mirror_real(results: dict) -> str:
    """Each group of kept models (3 random seeds) scored by G's prediction alone and averaged with its
    mirror image's: both halves overall, the report half per kind, and how many models it raised."""
    scored = {(r["model"], r["mirror"]): r["scores"] for r in results["mirror_real"]}
    header = ["models", "prediction", "choose half, all", *(f"report half, {label}" for label in REAL_SPLITS.values())]
    header += ["Holes, report half"]
    rows = []
    for prefix, label in MIRROR_MODELS.items():
        models = sorted({model for model, _ in scored if model.rsplit("_", 1)[0] == prefix})
        if not models:
            raise KeyError(f"docs/results/mirror_real.json has no model {prefix}_SEED: edit MIRROR_MODELS")
        for mirror, how in ((False, "G alone"), (True, "with its mirror image (the package)")):
            runs = [scored[(model, mirror)] for model in models]
            ious = [mean_sd([r[split]["iou"] for r in runs]) for split in ("choose/all", *REAL_SPLITS)]
            holes = mean_sd([r["report/all"]["holes"] for r in runs], 2)
            rows.append([f"{label}, seeds {', '.join(m.rsplit('_', 1)[1] for m in models)}", how, *ious, holes])
    return table(header, rows)


# The runs that compare picture sizes in about the same minutes (docs/real-photos.md): {run: label}.
RESOLUTION_RUNS = {
    "real_z": "64 pixels, batch 32, 750 steps (the `cpu` profile's settings)",
    "r96b16_z": "96 pixels, batch 16, 660 steps",
    "r128b16_z": "128 pixels, batch 16, 375 steps",
}


def resolution_real(results: dict) -> str:
    """Each picture size's model (random seed 0) scored at the photographs' own size on the choose half,
    its matte upsampled bilinearly and refined, with its training time (resolution_real.json, real_pairs.json)."""
    scored = {(r["model"], r["refine"]): r["scores"] for r in results["resolution_real"]}
    kinds = {split.replace("report/", "choose/"): label for split, label in REAL_SPLITS.items()}
    header = ["run", "training", *(f"IoU, {label}" for label in kinds.values()), "IoU, all, refined"]
    rows = []
    for name, label in RESOLUTION_RUNS.items():
        run = next(r for r in real_runs(results, name) if r["seed"] == 0)
        bilinear, refined = scored[(f"{name}_0", False)], scored[(f"{name}_0", True)]
        ious = [num(bilinear[split]["iou"]) for split in kinds]
        rows.append([label, minutes(run["train_s"]), *ious, num(refined["choose/all"]["iou"])])
    return table(header, rows)


# -- README's bottom line -----------------------------------------------------------------------


def gan_weights_holes(results: dict) -> str:
    """Holes and Conn on the report half, per kind of photograph, for the real pairs' GAN at the profile's
    weight, ten times quieter, and without it: where the adversarial term shows."""
    header = ["run", "random seeds", *(f"Holes, {label}" for label in REAL_SPLITS.values()), "Conn, all"]
    arms = (
        (PROFILE_RUNS["real"], "GAN (`--adv-weight 10`, the profile)"),
        (QUIETER_RUNS["real"], "GAN, ten times quieter (`--adv-weight 1`)"),
        (PROFILE_RUNS["real_nogan"], "no GAN (`--adv-weight 0`)"),
    )
    rows = []
    for name, label in arms:
        runs = real_runs(results, name)
        holes = [mean_sd(real(runs, split, "holes"), 2) for split in REAL_SPLITS]
        conn = mean_sd(real(runs, "report/all", "conn"), 0)
        rows.append([label, ", ".join(str(r["seed"]) for r in runs), *holes, conn])
    return table(header, rows)


def gan_weights(results: dict) -> str:
    """The profile's weight against a tenth of it and no GAN on the real pairs' report half: Holes, then IoU."""
    names = (PROFILE_RUNS["real"], QUIETER_RUNS["real"], PROFILE_RUNS["real_nogan"])
    arms = [real_runs(results, name) for name in names]
    holes = [mean_sd(real(runs, "report/all", "holes"), 2) for runs in arms]
    iou = [mean_sd(real(runs, "report/all")) for runs in arms]
    mean_holes = [statistics.mean(real(runs, "report/all", "holes")) for runs in arms]
    fewer = [percent(mean_holes[0], other) for other in mean_holes[1:]]
    return (
        f"Holes {holes[0]} against {holes[1]} at weight 1 and {holes[2]} without the GAN "
        f"({fewer[0]} and {fewer[1]}), IoU {iou[0]} against {iou[1]} and {iou[2]} ({len(arms[0])} random seeds)"
    )


def gan_weights_sample(results: dict) -> str:
    """The profile's weight against a tenth of it on the course's sample: test split, new photos, real photographs."""
    profile, quieter = real_runs(results, PROFILE_RUNS["sample"]), real_runs(results, QUIETER_RUNS["sample"])
    parts = []
    for split, name, what in (
        ("test", "iou", "test IoU"),
        ("new_photos", "iou", "new-photos IoU"),
        ("report/all", "iou", "real photographs' IoU"),
        ("report/all", "holes", "real photographs' Holes"),
    ):
        digits = 2 if name == "holes" else 3
        a, b = (mean_sd(real(runs, split, name), digits) for runs in (profile, quieter))
        parts.append(f"{what} {a} against {b}")
    return ", ".join(parts) + f" ({len(profile)} random seeds)"


# The profile's game started later (`--adv-start`): G first learns alone, by reconstruction, D idle: {run: label}.
LATER_START_RUNS = {
    PROFILE_RUNS["real"]: "from the first epoch (`--adv-start 0`, the profile)",
    "adv10_s25_z": "after a quarter of the epochs (`--adv-start 0.25`)",
    "adv10_s50_z": "after half of them (`--adv-start 0.5`)",
}


def gan_later_start(results: dict) -> str:
    """The profile's game (`--adv-weight 10`) started at the first epoch or later, random seed 0, on both halves."""
    header = ["the game (`--adv-weight 10`) starts", "random seed", "IoU, choose half", "Holes, choose half"]
    header += ["IoU, report half", "Holes, report half", "D's loss, last third"]
    rows = []
    for name, label in LATER_START_RUNS.items():
        run = real_runs(results, name)[0]
        scores = [run["scores"][f"{half}/all"]["model"] for half in ("choose", "report")]
        cells = [f(scores[i][key]) for i in (0, 1) for key, f in (("iou", num), ("holes", lambda x: num(x, 2)))]
        rows.append([label, str(run["seed"]), *cells, num(run["loss_d_last_third"])])
    return table(header, rows)


# -- the course's own data: the shipped and downloaded real pairs (course_data.json) ----------------

# The runs of course_data.json (experiments/real_pairs.py on the course's folders), by what they are.
COURSE_RUNS = {
    "offline": "offline_objects_sample",  # the shipped video frames with the drawn sample: a fresh clone's default
    "full": "real_train_objects",  # the course's full real set: the downloaded pairs with the video frames
    "full_nogan": "real_train_objects_nogan",
    # the downloaded pairs without the video frames: real_pairs.json's runs of the profile on the same 1,393 pairs
    "train_only": ("real_pairs", PROFILE_RUNS["real"]),
}
SOURCES = {"all": "all", "portrait": "portraits", "davis": "video frames", "horse": "horses"}


def course_runs(results: dict, what: str) -> list[dict]:
    file, name = COURSE_RUNS[what] if isinstance(COURSE_RUNS[what], tuple) else ("course_data", COURSE_RUNS[what])
    runs = sorted((r for r in results[file] if r["name"] == name), key=lambda r: r["seed"])
    if not runs:
        found = sorted({r["name"] for r in results[file]})
        raise KeyError(f"docs/results/{file}.json has no run named {name!r} (it has {found}): edit COURSE_RUNS")
    return runs


def course_baseline(results: dict, split: str, name: str = "iou") -> float:
    """The colour threshold's score on a split of the real test photographs (the same in every run)."""
    values = {r["scores"][split]["baseline"][name] for r in results["course_data"]}
    if len(values) != 1:
        raise ValueError(f"course_data.json: the baseline's {name} on {split} differs between runs: {sorted(values)}")
    return values.pop()


def seeds_note(runs: list[dict]) -> str:
    return "one random seed" if len(runs) == 1 else f"mean of {len(runs)} random seeds"


def sample_offline(results: dict) -> str:
    report = real(real_runs(results, PROFILE_RUNS["sample"]), "report/all")
    threshold = baseline(results, "report/all")
    return f"{mean_sd(report)}, against {num(threshold)} for a trivial colour threshold ({len(report)} random seeds)"


def readme_offline(results: dict) -> str:
    runs = course_runs(results, "offline")
    return (
        f"{mean_sd(real(runs, 'report/all'))} on the report half of the real test photographs "
        f"({seeds_note(runs)}; a colour threshold: {num(course_baseline(results, 'report/all'))})"
    )


def readme_full(results: dict) -> str:
    runs = course_runs(results, "full")
    return f"{mean_sd(real(runs, 'report/all'))} on the same photographs ({seeds_note(runs)})"


def readme_minutes(results: dict) -> str:
    """750 steps cost the same on any folder: the profile's runs on the downloaded pairs, each made alone."""
    minutes = [r["train_s"] / 60 for r in real_runs(results, PROFILE_RUNS["real"])]
    return f"{span(minutes, 1)} minutes on two CPU cores that compute bfloat16 natively, about three times that without"


def readme_gan(results: dict) -> str:
    gan, nogan = course_runs(results, "full"), course_runs(results, "full_nogan")
    iou = [statistics.mean(real(runs, "report/all")) for runs in (nogan, gan)]
    holes = [statistics.mean(real(runs, "report/all", "holes")) for runs in (nogan, gan)]
    return (
        f"{percent(*holes)} holes in the objects and IoU {num(iou[0])} against {num(iou[1])} with it, on the course's "
        f"full real set ({seeds_note(gan)})"
    )


def course_offline(results: dict) -> str:
    """What a fresh clone can train on, compared on the choose half: the drawn sample, the shipped video frames,
    both (one random seed each; the sample's own runs are real_pairs.json's, scored on the same photographs)."""
    header = ["trained on", "random seed", *(f"choose, {label}" for label in SOURCES.values()), "report, all"]
    arms = [
        ("the drawn sample alone", real_runs(results, PROFILE_RUNS["sample"])[:1]),
        ("the video frames and the drawn sample (the default offline)", course_runs(results, "offline")[:1]),
    ]
    rows = [
        [
            label,
            str(runs[0]["seed"]),
            *(num(real(runs, f"choose/{s}")[0]) for s in SOURCES),
            num(real(runs, "report/all")[0]),
        ]
        for label, runs in arms
    ]
    base = [num(course_baseline(results, f"choose/{s}")) for s in SOURCES]
    rows.append(["colour threshold", "", *base, num(course_baseline(results, "report/all"))])
    return table(header, rows)


def course_sets(results: dict, arms: tuple[str, ...] = ("offline", "train_only", "full")) -> str:
    """The `cpu` profile on each of the course's training sets, on the report half, per kind of photograph."""
    labels = {
        "offline": "the video frames and the drawn sample (offline)",
        "train_only": "the downloaded pairs alone (portraits, fashion photos, horses)",
        "full": "the downloaded pairs and the video frames (the course's full set)",
        "full_nogan": "the full set, without the GAN (`--adv-weight 0`)",
    }
    header = [
        "trained on",
        "random seeds",
        *(f"IoU, {label}" for label in SOURCES.values()),
        "Conn",
        "Holes",
    ]
    rows = []
    for what in arms:
        runs = course_runs(results, what)
        ious = [mean_sd(real(runs, f"report/{s}")) for s in SOURCES]
        conn, holes = mean_sd(real(runs, "report/all", "conn"), 0), mean_sd(real(runs, "report/all", "holes"), 2)
        rows.append([labels[what], ", ".join(str(r["seed"]) for r in runs), *ious, conn, holes])
    base = [num(course_baseline(results, f"report/{s}")) for s in SOURCES]
    conn, holes = (
        num(course_baseline(results, "report/all", "conn"), 0),
        num(course_baseline(results, "report/all", "holes"), 2),
    )
    rows.append(["colour threshold", "", *base, conn, holes])
    return table(header, rows)


def course_profile(results: dict) -> str:
    """The `cpu` profile on the course's data, offline and with the full set: notebook 3's first table."""
    header = ["`cpu` profile, trained on", "random seeds", "its own test split IoU", "real photos IoU, report half"]
    header += ["real photos Holes"]
    rows = []
    for what, label in (
        ("offline", "the shipped video frames and the drawn sample"),
        ("full", "the course's full real set"),
    ):
        runs = course_runs(results, what)
        rows.append(
            [
                label,
                ", ".join(str(r["seed"]) for r in runs),
                mean_sd(real(runs, "test")),
                mean_sd(real(runs, "report/all")),
                mean_sd(real(runs, "report/all", "holes"), 2),
            ]
        )
    rows.append(
        [
            "colour threshold",
            "",
            "",
            num(course_baseline(results, "report/all")),
            num(course_baseline(results, "report/all", "holes"), 2),
        ]
    )
    return table(header, rows)


def course_gan(results: dict) -> str:
    """The GAN against the same training without it on the course's full real set, 3 random seeds."""
    header = ["run", "real photos IoU", "video frames", "portraits", "horses", "Holes", "Conn", "D's loss, last third"]
    rows = []
    for what, label in (("full", "GAN (the profile's `--adv-weight 10`)"), ("full_nogan", "no GAN (`--adv-weight 0`)")):
        runs = course_runs(results, what)
        d_loss = mean_sd([r["loss_d_last_third"] for r in runs]) if "loss_d_last_third" in runs[0] else "no D"
        rows.append(
            [
                label,
                mean_sd(real(runs, "report/all")),
                mean_sd(real(runs, "report/davis")),
                mean_sd(real(runs, "report/portrait")),
                mean_sd(real(runs, "report/horse")),
                mean_sd(real(runs, "report/all", "holes"), 2),
                mean_sd(real(runs, "report/all", "conn"), 0),
                d_loss,
            ]
        )
    return table(header, rows)


RENDERERS = {
    "cpu_profile": cpu_profile,
    "premultiplied": premultiplied,
    "premultiplied_per_seed": premultiplied_per_seed,
    "gan_vs_nogan": gan_vs_nogan,
    "gan_verdict": gan_verdict,
    "d_learns": d_learns,
    "real_pairs": real_pairs,
    "real_pairs_choices": real_pairs_choices,
    "gan_seeds": gan_seeds,
    "gan_weights": gan_weights,
    "gan_weights_holes": gan_weights_holes,
    "gan_weights_sample": gan_weights_sample,
    "gan_later_start": gan_later_start,
    "real_halves_choose": lambda results: pictures(results, "choose/all"),
    "real_halves_report": lambda results: pictures(results, "report/all"),
    "time_to_quality_real_pairs": lambda results: time_to_quality(results, "bench_real_pairs"),
    "time_to_quality_real_pairs_900": lambda results: time_to_quality(results, "bench_real_pairs_900"),
    "time_to_quality_real_pairs_240": lambda results: time_to_quality(results, "bench_real_pairs_240"),
    "time_to_quality_real_pairs_zoom1": lambda results: time_to_quality(results, "bench_real_pairs_zoom1"),
    "time_to_quality_sample": lambda results: time_to_quality(results, "bench_sample"),
    "bench_sample": lambda results: bench_table(results, "bench_sample"),
    "bench_inference": lambda results: bench_table(results, "bench_inference"),
    "bench_onnx": lambda results: bench_table(results, "bench_onnx", only="onnxruntime "),
    "warmup_time_to_quality": warmup_time_to_quality,
    "warmup_whole_runs": warmup_whole_runs,
    "mixed_new_photos": mixed_new_photos,
    "gan_two_scales": gan_two_scales,
    "refine_real": refine_real,
    "real_pairs_augment": real_pairs_augment,
    "mirror_real": mirror_real,
    "resolution_real": resolution_real,
    "readme_offline": readme_offline,
    "sample_offline": sample_offline,
    "readme_full": readme_full,
    "readme_minutes": readme_minutes,
    "readme_gan": readme_gan,
    "course_offline": course_offline,
    "course_sets": course_sets,
    "course_gan": course_gan,
    "course_profile": course_profile,
}


# -- filling the pages --------------------------------------------------------------------------


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def fill(text: str, results: dict, where: str = "") -> tuple[str, list[str]]:
    """The text with every block rendered again, and the names of the blocks that changed."""
    if len(re.findall(OPEN, text)) != len(BLOCK.findall(text)):
        raise ValueError(f"{where}: a `<!-- table: NAME -->` without its `<!-- /table -->`")
    stale = []

    def render(match: re.Match) -> str:
        name, old = match.group(1), match.group(2)
        if name not in RENDERERS:
            raise KeyError(f"{where}: no renderer for the block {name!r} (known: {sorted(RENDERERS)})")
        body = RENDERERS[name](results)
        new = f"\n\n{body}\n\n" if "\n" in body else body  # a table stands apart from its markers
        if new != old:
            stale.append(name)
        return f"<!-- table: {name} -->{new}<!-- /table -->"

    return BLOCK.sub(render, text), stale


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("**/*.ipynb"))


def fill_notebook(path: Path, results: dict, where: str) -> tuple[dict, list[str]]:
    """The notebook (as JSON) with the blocks of its markdown cells rendered again, and the stale ones."""
    notebook, stale = json.loads(path.read_text()), []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            new, names = fill(text, results, f"{where} cell {index}")
            stale += names
            cell["source"] = new.splitlines(keepends=True)
    return notebook, stale


def check(root: Path = ROOT, results: dict | None = None, write: bool = False) -> list[str]:
    """'page: block' for every stale block of the pages and the notebooks' markdown; with
    write=True, they are rewritten too."""
    results = load() if results is None else results
    stale = []
    for page in pages(root):
        text = page.read_text()
        new, names = fill(text, results, page.relative_to(root).as_posix())
        stale += [f"{page.relative_to(root).as_posix()}: {name}" for name in names]
        if write and new != text:
            page.write_text(new)
    for path in notebooks(root):
        where = path.relative_to(root).as_posix()
        notebook, names = fill_notebook(path, results, where)
        stale += [f"{where}: {name}" for name in names]
        if write and names:  # as Jupyter writes it: one space of indent, unicode as it is
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return stale


def main(argv: list[str]) -> int:
    if argv not in ([], ["--check"]):
        print(__doc__)
        return 2
    stale = check(write=not argv)
    for block in stale:
        print(f"{'stale' if argv else 'rewritten'}: {block}")
    return 1 if argv and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
