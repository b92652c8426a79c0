"""Training configuration: one dataclass, and the named profiles `full` (the seed's settings,
for a GPU), `cpu` (minutes on a laptop) and `quick` (tests and CI).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace

import torch

from .errors import ConfigError

PROFILE_ENV = "BGREMOVE_PROFILE"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved with `asdict` in every checkpoint."""

    profile: str = "cpu"
    # data
    data_root: str | None = None  # a folder holding the two image folders; None: the course's sample
    bg_path: str | None = None  # photos (the seed's name); with no_bg_path, overrides data_root
    no_bg_path: str | None = None  # cut-outs of the same stems
    image_size: int = 64
    augment: bool = True
    num_workers: int = 0
    # model
    base_channels: int = 32
    max_channels: int = 128
    depth: int = 4
    d_channels: int = 32
    d_down: int = 3
    # optimisation
    epochs: int = 20
    batch_size: int = 16  # per process: under torchrun the global batch is batch_size x number of processes
    lr_g: float = 1e-4
    lr_d: float = 1e-5
    betas: tuple[float, float] = (0.5, 0.999)
    lr_schedule: str = "constant"  # or "onecycle": warm up, then anneal to zero by the last epoch
    l1_weight: float = 100.0
    adv_weight: float = 1.0
    amp: bool = True  # mixed precision: float16 on CUDA, bfloat16 on CPUs that have it
    seed: int = 0
    # where things go
    device: str = "auto"  # "auto", "cuda", "cuda:1", "mps" or "cpu"
    checkpoint_dir: str | None = None  # None: <project>/checkpoints
    sample_every: int = 5  # save sample predictions every this many epochs (0: never)

    def model_kwargs(self) -> dict:
        """What GModel needs to be rebuilt from a checkpoint."""
        return {"base_channels": self.base_channels, "depth": self.depth, "max_channels": self.max_channels}

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, TrainConfig] = {
    # The seed's settings: batch 55, 200 epochs, lr 1e-4 (G) and 1e-5 (D), on a GPU at 256 px.
    "full": TrainConfig(
        profile="full",
        image_size=256,
        base_channels=64,
        max_channels=512,
        depth=6,
        d_channels=64,
        d_down=3,
        epochs=200,
        batch_size=55,
        lr_g=1e-4,
        lr_d=1e-5,
        num_workers=2,
        sample_every=10,
    ),
    # A few minutes on two CPU cores.
    "cpu": TrainConfig(
        profile="cpu",
        image_size=64,
        base_channels=32,
        max_channels=128,
        depth=4,
        d_channels=24,
        d_down=3,
        epochs=40,  # about 5 s an epoch on two cores with bfloat16: three to four minutes
        batch_size=16,
        lr_g=2e-3,
        lr_d=2e-4,
        lr_schedule="onecycle",
    ),
    # Tests, CI and the notebooks under CI: well under a minute.
    "quick": TrainConfig(
        profile="quick",
        image_size=64,
        base_channels=16,
        max_channels=64,
        depth=4,
        d_channels=16,
        d_down=3,
        epochs=20,
        batch_size=16,
        lr_g=2e-3,
        lr_d=2e-4,
        lr_schedule="onecycle",
        sample_every=4,
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
    """The named profile (default: `default_profile()`) with any field replaced by `overrides`."""
    name = profile or default_profile()
    if name not in PROFILES:
        raise ConfigError(f"profile={name!r} is not one of {sorted(PROFILES)}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown training argument(s) {unknown}; known: {sorted(known)}")
    config = replace(PROFILES[name], **{k: v for k, v in overrides.items() if v is not None})
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Fail early, before any data is loaded, on arguments that cannot work."""
    positive = ["epochs", "batch_size", "image_size", "base_channels", "max_channels", "depth", "d_channels", "d_down"]
    for name in positive:
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}={value!r}: must be a whole number of at least 1")
    for name in ("lr_g", "lr_d", "l1_weight"):
        if not getattr(config, name) > 0:
            raise ConfigError(f"{name}={getattr(config, name)!r}: must be positive")
    if config.image_size % 2**config.depth or config.image_size % 2**config.d_down:
        step = 2 ** max(config.depth, config.d_down)
        raise ConfigError(
            f"image_size={config.image_size}: must be divisible by {step} (2**depth); try "
            f"{max(step, round(config.image_size / step) * step)}"
        )
    if config.image_size // 2**config.depth < 2:
        raise ConfigError(
            f"depth={config.depth}: too deep for image_size={config.image_size} (the bottleneck must be at "
            f"least 2x2 pixels); use depth <= {max(1, config.image_size.bit_length() - 2)}"
        )
    if config.lr_schedule not in ("constant", "onecycle"):
        raise ConfigError(f"lr_schedule={config.lr_schedule!r}: use 'constant' or 'onecycle'")
    if config.num_workers < 0:
        raise ConfigError(f"num_workers={config.num_workers}: must be 0 or more")
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
