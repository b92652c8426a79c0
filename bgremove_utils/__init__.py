"""bgremove_utils: background removal with a GAN in PyTorch, the package behind the course.

The folders are its layers, each importing only those below it (docs/package.md, "Package map"):
cli and bench; course (the notebooks' figures, Colab, a checkpoint for a notebook); training (the
GAN, its losses and step, the loop, checkpoints of a run) and export (cut-outs at the photo's
resolution); evaluation (metrics); models (the networks and their checkpoint files) and data
(pictures, the course's real photographs and their download, the sample, pairs, loaders, Kaggle);
settings, errors, paths and files at the bottom.
"""

from .course.check import check_data
from .course.viz import plot_history, predict_and_compare, show_pairs
from .data.course import course_data_root
from .data.dataset import PairedImageDataset, make_loaders
from .data.download import download_kaggle
from .data.pairs import find_pairs
from .data.real import real_loader
from .data.real_download import download_real
from .data.sample import make_sample
from .errors import (
    BgRemoveError,
    CheckpointError,
    ConfigError,
    DataError,
    DivergenceError,
    DownloadError,
    ImageError,
    KaggleError,
    OutputError,
)
from .evaluation.metrics import evaluate
from .export.inference import cut_out, process_and_generate, process_folder
from .models.checkpoint import load_generator
from .models.networks import DModel, GModel
from .settings import PROFILES, DataConfig, DConfig, GConfig, TrainConfig, make_config, with_settings
from .training.gan import GAN, train_step
from .training.loop import train

__all__ = [
    "BgRemoveError",
    "CheckpointError",
    "ConfigError",
    "DConfig",
    "DModel",
    "DataConfig",
    "DataError",
    "DivergenceError",
    "DownloadError",
    "GAN",
    "GConfig",
    "GModel",
    "ImageError",
    "KaggleError",
    "OutputError",
    "PROFILES",
    "PairedImageDataset",
    "TrainConfig",
    "check_data",
    "course_data_root",
    "cut_out",
    "download_kaggle",
    "download_real",
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
    "real_loader",
    "show_pairs",
    "train",
    "train_step",
    "with_settings",
]
