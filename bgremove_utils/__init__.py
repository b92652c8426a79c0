"""bgremove_utils: background removal with a GAN in PyTorch, the package behind the course.

One module per idea: sample (offline data), pairs (finding and splitting them), data (dataset,
loaders), download (Kaggle), models (GModel, DModel), losses, config (profiles), train,
checkpoint, inference, metrics, viz, datastats, cli.
"""

from .checkpoint import load_generator
from .config import PROFILES, TrainConfig, make_config, with_settings
from .data import DataConfig, PairedImageDataset, make_loaders
from .download import download_kaggle
from .errors import BgRemoveError, CheckpointError, ConfigError, DataError, ImageError, KaggleError, OutputError
from .inference import cut_out, process_and_generate, process_folder
from .metrics import evaluate
from .models import DConfig, DModel, GConfig, GModel
from .pairs import find_pairs
from .sample import make_sample
from .train import train, train_step
from .viz import plot_history, predict_and_compare, show_pairs

__all__ = [
    "BgRemoveError",
    "CheckpointError",
    "ConfigError",
    "DConfig",
    "DModel",
    "DataConfig",
    "DataError",
    "GConfig",
    "GModel",
    "ImageError",
    "KaggleError",
    "OutputError",
    "PROFILES",
    "PairedImageDataset",
    "TrainConfig",
    "cut_out",
    "download_kaggle",
    "evaluate",
    "find_pairs",
    "load_generator",
    "make_config",
    "make_loaders",
    "make_sample",
    "plot_history",
    "predict_and_compare",
    "process_and_generate",
    "process_folder",
    "show_pairs",
    "train",
    "train_step",
    "with_settings",
]
