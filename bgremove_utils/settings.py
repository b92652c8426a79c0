"""Every setting of the course in one place: the configs each part owns (`GConfig` and `DConfig` of
the two networks, `DataConfig` of the data), `TrainConfig` made of them, the named profiles, the one
rule that picks a profile, and the file names and sizes several parts share. A leaf: it imports
nothing of the package but its exceptions, so every other module may import it.

`TrainConfig()` is the `cpu` profile; `full` (the original project's optimisation, for a GPU) and `quick`
(tests, CI) are written as changes of it.
"""

from __future__ import annotations

import os
from dataclasses import Field, asdict, dataclass, field, fields, is_dataclass, replace
from functools import cache
from typing import get_args, get_origin, get_type_hints

import torch

from .errors import ConfigError

PROFILE_ENV = "BGREMOVE_PROFILE"  # CI and the tests select the quick profile through it
BEST_CHECKPOINT = "best.pt"  # in a checkpoint folder: the G to export (the last epoch, or the best validation IoU)
LAST_CHECKPOINT = "last.pt"  # the last epoch, with everything a run needs to resume
HISTORY_FILE = "history.json"  # the per-epoch history of a run
EVAL_BATCH = 32  # pictures per batch when measuring (no gradients: larger than training's)
# The original project's optimisation: batch 55, 200 epochs, Adam at 1e-4 (G) and 1e-5 (D), constant.
ORIGINAL = {"batch_size": 55, "epochs": 200, "lr_g": 1e-4, "lr_d": 1e-5, "lr_schedule": "constant"}


def setting(default, help: str, **meta):
    """A config field with its help text, written once: the CLI's flags are made from these."""
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class GConfig:
    """The generator's shape, and the size of the pictures it sees: kept on the model as
    `model.config` and in every checkpoint, from which `load_generator` rebuilds it."""

    image_size: int = setting(64, "side of the square pictures the networks see, in pixels", positive=True)
    base_channels: int = setting(32, "generator: channels of its first layer, doubled at each level", positive=True)
    max_channels: int = setting(128, "generator: most channels of any layer", positive=True)
    depth: int = setting(4, "generator: encoder blocks, each halving the size", positive=True)


@dataclass(frozen=True)
class DConfig:
    """The discriminator's shape: kept on the model as `model.config` and in every checkpoint."""

    d_channels: int = setting(24, "discriminator: channels of its first layer", positive=True)
    d_down: int = setting(3, "discriminator: blocks halving the size (its map: image_size / 2**d_down)", positive=True)
    d_spectral_norm: bool = setting(True, "discriminator: spectral normalisation of its convolutions (Miyato 2018)")


@dataclass(frozen=True)
class DataConfig:
    """Where the pairs are and how they are served: what `make_loaders` takes, whole."""

    data_root: str | None = setting(
        None,
        "folder holding the photo and cut-out folders, or several joined by ':' (';' on Windows); default: the "
        "course's real pairs (data/real-train with data/real-objects; without the download, data/real-objects "
        "with the drawn sample)",
    )
    bg_path: str | None = setting(None, "folder of photos (with background); use with --no-bg-path")
    no_bg_path: str | None = setting(None, "folder of cut-outs (no background), same file stems as --bg-path")
    batch_size: int = setting(32, "pictures per step (per process under torchrun)", positive=True)
    num_workers: int = setting(0, "DataLoader worker processes (0: in the main process)")
    augment: bool = setting(True, "random flips and crops, or zoom-outs (--zoom-out), of the training pairs")
    zoom_out: float = setting(
        0.3,
        "with augment: the smallest side half the training pictures are shrunk to, the frame around them "
        "continuing their edges, so that objects are also seen small, as in wide shots (1: never)",
        positive=True,
    )

    def names_source(self) -> bool:
        """Whether it names a folder of pairs; if not, the pairs are the course's own (data/course.py)."""
        return self.data_root is not None or self.bg_path is not None


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved with `asdict` in every checkpoint. Any setting, of
    the run or of a part, can be replaced by its own name: `with_settings(config, depth=3)`.
    The defaults are the `cpu` profile: 750 steps, about 7 minutes on two cores with bfloat16 (50
    epochs of the course's sample, 22 of a folder of 1,400 pairs)."""

    profile: str = setting(
        "cpu", "full (a GPU: the original project's batch, epochs, rate), cpu (a laptop: minutes), quick (tests, CI)"
    )
    data: DataConfig = field(default_factory=DataConfig)
    g: GConfig = field(default_factory=GConfig)
    d: DConfig = field(default_factory=DConfig)
    epochs: int | None = setting(
        None, "passes over the training pairs (default: as many as --steps makes for the folder)", positive=True
    )
    steps: int = setting(
        750,
        "optimizer steps of a run whose --epochs is not given: about the same minutes whatever the folder's size",
        positive=True,
    )
    lr_g: float = setting(2e-3, "generator's learning rate (the peak of a one-cycle schedule)", positive=True)
    lr_d: float = setting(
        2e-3,
        "discriminator's learning rate (the peak of a one-cycle schedule); another than lr_g is a two time-scale rule",
        positive=True,
    )
    betas: tuple[float, float] = setting((0.5, 0.999), "Adam's two betas")
    lr_schedule: str = setting(
        "onecycle",
        "constant, or onecycle: warm up, then anneal to zero by the last epoch",
        choices=("constant", "onecycle"),
    )
    warmup: float = setting(
        0.15,
        "share of a one-cycle schedule's steps that warm up from 1/25 of the peak rate (0.05: the first "
        "level of quality sooner, less so with zoom-out; the end no better)",
        positive=True,
    )
    grad_accum: int = setting(
        1, "steps each batch in this many parts, adding up their gradients: less memory", positive=True
    )
    rec_weight: float = setting(
        100.0,
        "weight of the four reconstruction terms: alpha BCE, soft IoU, alpha L1, colour L1 (pix2pix's lambda)",
        positive=True,
        alias="l1_weight",
    )
    adv_weight: float = setting(
        10.0,
        "weight of the adversarial term beside the reconstruction terms' 100 (0: no GAN, no D built: G trains "
        "alone; 10 left fewer holes than 1)",
    )
    keep: str = setting(
        "last",
        "which epoch's G best.pt holds: last (where a one-cycle schedule ends) or best (the best validation IoU)",
        choices=("last", "best"),
    )
    amp: bool = setting(
        True,
        "mixed precision: bfloat16 on CUDA GPUs that have it, else float16 with a loss scaler per network; "
        "bfloat16 on CPUs with native bfloat16",
    )
    seed: int = setting(0, "seed of the weights, the shuffling and the augmentations")
    device: str = setting("auto", "auto (CUDA, else Apple MPS, else CPU), cuda, cuda:1, mps or cpu")
    checkpoint_dir: str | None = setting(None, "where checkpoints, samples and history.json go (default: checkpoints/)")
    sample_every: int = setting(5, "save sample predictions every this many epochs (0: never)")

    def to_dict(self) -> dict:
        return asdict(self)

    def planned_epochs(self, batches_per_epoch: int) -> int:
        """The epochs a run trains: `epochs` when given, else as many as make about `steps` steps."""
        return self.epochs or max(1, round(self.steps / batches_per_epoch))

    def flat(self) -> dict:
        """Every setting by its own name, the parts' included: {"epochs": 40, "depth": 4, ...}."""
        return {name: getattr(getattr(self, part) if part else self, name) for name, (part, _, _) in settings().items()}

    @classmethod
    def from_dict(cls, saved: dict) -> TrainConfig:
        """The config a checkpoint saved: nested by part, or flat as before the parts existed.
        Names this version does not know are left out, missing ones take their defaults."""
        flat = {k: v for k, v in saved.items() if k not in parts()}
        for part in parts():
            flat.update(saved.get(part) or {})
        known, flat = settings(), {aliases().get(k, k): v for k, v in flat.items()}
        flat = {k: tuple(v) if known[k][2] is tuple else v for k, v in flat.items() if k in known}
        return _replace(cls(), flat)


@cache
def parts() -> dict[str, type]:
    """The parts of a TrainConfig, each a config of its own: {"data": DataConfig, "g": ..., "d": ...}."""
    hints = get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in fields(TrainConfig) if is_dataclass(hints[f.name])}


def _plain_type(hint) -> type:
    """int, float, bool, str or tuple: what a setting's value is, None aside (`str | None` -> str)."""
    if get_origin(hint) is tuple:
        return tuple
    kinds = [kind for kind in get_args(hint) if kind is not type(None)]
    return kinds[0] if kinds else hint


@cache
def settings() -> dict[str, tuple[str | None, Field, type]]:
    """Every setting of a training run by its own name: (the part that holds it, or None for the
    run's own; its dataclass field; its plain type). The CLI's flags are made from these."""
    found = {}
    for owner, cls in [(None, TrainConfig), *parts().items()]:
        hints = get_type_hints(cls)
        found |= {f.name: (owner, f, _plain_type(hints[f.name])) for f in fields(cls) if f.name not in parts()}
    return found


@cache
def aliases() -> dict[str, str]:
    """Earlier names of settings, each to its name now ({"l1_weight": "rec_weight"}): still understood."""
    return {f.metadata["alias"]: name for name, (_, f, _) in settings().items() if "alias" in f.metadata}


def _replace(config: TrainConfig, flat: dict) -> TrainConfig:
    """`config` with the settings of `flat` replaced, each in the part that holds it."""
    flat = {aliases().get(name, name): value for name, value in flat.items()}
    known = settings()
    unknown = sorted(set(flat) - set(known))
    if unknown:
        raise ConfigError(f"unknown training argument(s) {unknown}; known: {sorted(known)}")
    own = {k: v for k, v in flat.items() if known[k][0] is None}
    for part in parts():
        mine = {k: v for k, v in flat.items() if known[k][0] == part}
        if mine:
            own[part] = replace(getattr(config, part), **mine)
    return replace(config, **own)


def with_settings(config: TrainConfig, **overrides) -> TrainConfig:
    """`config` with any setting replaced by its own name, checked before any data is loaded:
    `with_settings(config, epochs=50, depth=3, batch_size=8)`. A value given is the value used,
    None too (`data_root=None`: the course's own pairs); a setting not named keeps the config's value."""
    config = _replace(config, overrides)
    validate(config)
    return config


_CPU = TrainConfig()
PROFILES: dict[str, TrainConfig] = {
    # The original project's optimisation on a GPU at 256 px, with the D that learnt in the measurements
    # (docs/gan.md): at G's rate and spectrally normalised; at a tenth of G's rate, its loss sat at chance.
    "full": replace(
        _CPU,
        profile="full",
        data=DataConfig(batch_size=ORIGINAL["batch_size"], num_workers=2),
        g=GConfig(image_size=256, base_channels=64, max_channels=512, depth=6),
        d=DConfig(d_channels=64, d_down=3, d_spectral_norm=True),
        epochs=ORIGINAL["epochs"],
        lr_g=ORIGINAL["lr_g"],
        lr_d=ORIGINAL["lr_g"],
        lr_schedule=ORIGINAL["lr_schedule"],
        keep="best",  # a constant rate never settles: the epoch of the best validation IoU, as before
        sample_every=10,
    ),
    # A few minutes on two CPU cores: the defaults.
    "cpu": _CPU,
    # Tests, CI and the notebooks under CI: the cpu profile narrower, at batch 16, 180 steps (6 epochs of the
    # sample's 480 training pairs): half a minute, whatever the folder. Its warm-up is short: so short a run
    # scored higher with it (test IoU 0.60 against 0.56-0.59, seeds 0-1).
    "quick": replace(
        _CPU,
        profile="quick",
        data=replace(_CPU.data, batch_size=16),
        g=replace(_CPU.g, base_channels=16, max_channels=64),
        d=replace(_CPU.d, d_channels=16),
        steps=180,
        warmup=0.05,
    ),
}

_told = False


def pick_profile(name: str | None = None, default: str | None = None) -> str:
    """The profile a run uses, by one rule for train, demo, bench, the CLI and CI: `name` if given,
    else $BGREMOVE_PROFILE, else `default`, else `full` with a CUDA GPU and `cpu` without (said once)."""
    global _told
    name = name or os.environ.get(PROFILE_ENV) or default
    if name:
        if name not in PROFILES:
            raise ConfigError(f"profile={name!r} is not one of {sorted(PROFILES)}")
        return name
    if torch.cuda.is_available():
        return "full"
    if not _told:
        print(
            "No CUDA GPU found: using the 'cpu' profile (small images, a few minutes). "
            f"Set {PROFILE_ENV}=quick for a faster, rougher run."
        )
        _told = True
    return "cpu"


def make_config(profile: str | None = None, **overrides) -> TrainConfig:
    """The named profile (default: `pick_profile()`) with any setting replaced by `overrides`."""
    return with_settings(PROFILES[pick_profile(profile)], **overrides)


def validate(config: TrainConfig) -> None:
    """Fail early, before any data is loaded, on settings that cannot work."""
    values = config.flat()
    for name, (_, f, kind) in settings().items():
        value = values[name]
        if value is None and f.default is None:
            continue  # None is this setting's own default: allowed (epochs: from steps)
        if f.metadata.get("positive") and kind is int and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name}={value!r}: must be a whole number of at least 1")
        if f.metadata.get("positive") and kind is float and not value > 0:
            raise ConfigError(f"{name}={value!r}: must be positive")
        if "choices" in f.metadata and value not in f.metadata["choices"]:
            raise ConfigError(f"{name}={value!r}: use one of {', '.join(map(repr, f.metadata['choices']))}")
    size, depth, d_down = config.g.image_size, config.g.depth, config.d.d_down
    if size % 2**depth or size % 2**d_down:
        step = 2 ** max(depth, d_down)
        raise ConfigError(
            f"image_size={size}: must be divisible by {step} (2**depth); try {max(step, round(size / step) * step)}"
        )
    if size // 2**depth < 2:
        raise ConfigError(
            f"depth={depth}: too deep for image_size={size} (the bottleneck must be at "
            f"least 2x2 pixels); use depth <= {max(1, size.bit_length() - 2)}"
        )
    if not 0 < config.warmup < 1:
        raise ConfigError(f"warmup={config.warmup}: a share of the steps, above 0 and below 1")
    if not 0 < config.data.zoom_out <= 1:
        raise ConfigError(f"zoom_out={config.data.zoom_out}: a share of the picture's side, above 0 and at most 1")
    if config.data.num_workers < 0:
        raise ConfigError(f"num_workers={config.data.num_workers}: must be 0 or more")


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" -> CUDA, else Apple MPS, else CPU; a named device that is not there is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r}: not a device name; use 'auto', 'cuda', 'mps' or 'cpu'") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"device={name!r}: no such CUDA GPU here; use device='auto' or 'cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name!r}: Apple MPS is not available here; use device='auto' or 'cpu'")
    return device
