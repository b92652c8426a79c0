"""Training configuration: `TrainConfig`, made of the settings each part owns (`DataConfig` of the
data, `GConfig` and `DConfig` of the two networks) and the optimisation's own; and the named
profiles `full` (the seed's settings, for a GPU), `cpu` (minutes on a laptop), `quick` (tests, CI).
"""

from __future__ import annotations

import os
from dataclasses import Field, asdict, dataclass, field, fields, is_dataclass, replace
from functools import cache
from typing import get_args, get_origin, get_type_hints

import torch

from .data import DataConfig
from .errors import ConfigError
from .models import DConfig, GConfig, setting

PROFILE_ENV = "BGREMOVE_PROFILE"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved with `asdict` in every checkpoint. Any setting, of
    the run or of a part, can be replaced by its own name: `with_settings(config, depth=3)`."""

    profile: str = setting("cpu", "full (a GPU: the seed's settings), cpu (a laptop: minutes) or quick (tests, CI)")
    data: DataConfig = field(default_factory=DataConfig)
    g: GConfig = field(default_factory=GConfig)
    d: DConfig = field(default_factory=DConfig)
    epochs: int = setting(20, "passes over the training pairs", positive=True)
    lr_g: float = setting(1e-4, "generator's learning rate (the peak of a one-cycle schedule)", positive=True)
    lr_d: float = setting(1e-5, "discriminator's learning rate (the peak of a one-cycle schedule)", positive=True)
    betas: tuple[float, float] = setting((0.5, 0.999), "Adam's two betas")
    lr_schedule: str = setting(
        "constant",
        "constant, or onecycle: warm up, then anneal to zero by the last epoch",
        choices=("constant", "onecycle"),
    )
    grad_accum: int = setting(
        1, "steps each batch in this many parts, adding up their gradients: less memory", positive=True
    )
    l1_weight: float = setting(100.0, "weight of the reconstruction terms (pix2pix's lambda)", positive=True)
    adv_weight: float = setting(1.0, "weight of the adversarial term (0: no GAN, reconstruction only)")
    amp: bool = setting(True, "mixed precision: float16 on CUDA, bfloat16 on CPUs with native bfloat16")
    seed: int = setting(0, "seed of the weights, the shuffling and the augmentations")
    device: str = setting("auto", "auto (CUDA, else Apple MPS, else CPU), cuda, cuda:1, mps or cpu")
    checkpoint_dir: str | None = setting(None, "where checkpoints, samples and history.json go (default: checkpoints/)")
    sample_every: int = setting(5, "save sample predictions every this many epochs (0: never)")

    def to_dict(self) -> dict:
        return asdict(self)

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
        known = settings()
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


def _replace(config: TrainConfig, flat: dict) -> TrainConfig:
    """`config` with the settings of `flat` replaced, each in the part that holds it."""
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
    """`config` with any setting replaced by its own name (None keeps it), checked before any data
    is loaded: `with_settings(config, epochs=50, depth=3, batch_size=8)`."""
    config = _replace(config, {k: v for k, v in overrides.items() if v is not None})
    validate(config)
    return config


_CPU = TrainConfig(
    profile="cpu",
    g=GConfig(image_size=64, base_channels=32, max_channels=128, depth=4),
    d=DConfig(d_channels=24, d_down=3),
    epochs=30,  # about 9 s an epoch on two cores with bfloat16: under five minutes
    lr_g=2e-3,
    lr_d=2e-4,
    lr_schedule="onecycle",
)
PROFILES: dict[str, TrainConfig] = {
    # The seed's settings: batch 55, 200 epochs, lr 1e-4 (G) and 1e-5 (D), on a GPU at 256 px.
    "full": TrainConfig(
        profile="full",
        data=DataConfig(batch_size=55, num_workers=2),
        g=GConfig(image_size=256, base_channels=64, max_channels=512, depth=6),
        d=DConfig(d_channels=64, d_down=3),
        epochs=200,
        lr_g=1e-4,
        lr_d=1e-5,
        sample_every=10,
    ),
    # A few minutes on two CPU cores.
    "cpu": _CPU,
    # Tests, CI and the notebooks under CI: the cpu profile, narrower and a third as long, under a minute.
    "quick": replace(
        _CPU,
        profile="quick",
        g=replace(_CPU.g, base_channels=16, max_channels=64),
        d=replace(_CPU.d, d_channels=16),
        epochs=10,
    ),
}

_told = False


def default_profile() -> str:
    """$BGREMOVE_PROFILE if set, else `full` with a CUDA GPU and `cpu` without (said once)."""
    global _told
    if os.environ.get(PROFILE_ENV):
        return os.environ[PROFILE_ENV]
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
    """The named profile (default: `default_profile()`) with any setting replaced by `overrides`."""
    name = profile or default_profile()
    if name not in PROFILES:
        raise ConfigError(f"profile={name!r} is not one of {sorted(PROFILES)}")
    return with_settings(PROFILES[name], **overrides)


def validate(config: TrainConfig) -> None:
    """Fail early, before any data is loaded, on settings that cannot work."""
    values = config.flat()
    for name, (_, f, kind) in settings().items():
        value = values[name]
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
    if config.data.num_workers < 0:
        raise ConfigError(f"num_workers={config.data.num_workers}: must be 0 or more")
    resolve_device(config.device)


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
