"""bgremove_utils: background removal with a GAN in PyTorch, the package behind the course.

One module per idea: sample (offline data), data (pairs, dataset, loaders, Kaggle), models
(GModel, DModel), losses, config (profiles), train, checkpoint, inference, metrics, viz, cli.
"""

from .checkpoint import load_generator
from .config import PROFILES, TrainConfig, make_config
from .data import PairedImageDataset, download_kaggle, find_pairs, make_loaders
from .errors import BgRemoveError, CheckpointError, ConfigError, DataError, ImageError, KaggleError, OutputError
from .inference import cut_out, process_and_generate, process_folder
from .metrics import evaluate
from .models import DModel, GModel
from .sample import make_sample
from .train import train, train_step
from .viz import plot_history, predict_and_compare, show_pairs

__all__ = [
    "BgRemoveError",
    "CheckpointError",
    "ConfigError",
    "DModel",
    "DataError",
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
]
