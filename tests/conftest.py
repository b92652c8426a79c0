"""Shared fixtures: the course's sample and one training run of a tiny model on it, made once per
test session; a smaller sample and loaders for tiny models, once per module.

Tests write only under pytest's tmp_path; the quick profile is selected for anything that trains
(and for the notebooks nbval runs, whose kernels inherit this environment).
"""

import os

import pytest
import torch

os.environ.setdefault("BGREMOVE_PROFILE", "quick")
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory):
    """The default sample (600 pairs at 256 px), as the course makes it."""
    from bgremove_utils.data.sample import make_sample

    return make_sample(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="session")
def trained_run(sample_root, tmp_path_factory):
    """A tiny model (TINY_MODEL) trained 4 epochs on the sample, as most tests need a trained model
    only to load it: (checkpoint folder, history). Seconds where the quick profile takes a minute;
    nbval trains the quick profile itself in notebook 3."""
    from bgremove_utils.training.loop import train

    checkpoints = tmp_path_factory.mktemp("checkpoints")
    history = train(data_root=str(sample_root), **{**TINY_MODEL, "epochs": 4, "checkpoint_dir": str(checkpoints)})
    return checkpoints, history


@pytest.fixture(scope="session")
def quick_loaders(sample_root):
    from bgremove_utils.data.dataset import make_loaders

    return make_loaders(sample_root, image_size=64, batch_size=32, augment=False)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and do not stall when the machine is busy. Modules
    of tiny models use it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY_MODEL = dict(
    profile="quick", image_size=32, base_channels=8, d_channels=8, depth=3, epochs=3, progress=False, sample_every=0
)


@pytest.fixture(scope="session")
def tiny_run():
    """The arguments of `train` for a tiny model writing to `checkpoint_dir`, three epochs unless
    overridden: `train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))`."""
    return lambda checkpoint_dir, **overrides: {**TINY_MODEL, "checkpoint_dir": str(checkpoint_dir), **overrides}


@pytest.fixture(scope="module")
def tiny_sample(tmp_path_factory):
    """A small sample (40 pairs at 64 px) for training runs of a tiny model."""
    from bgremove_utils.data.sample import make_sample

    return make_sample(tmp_path_factory.mktemp("tiny"), n_pairs=40, size=64)


@pytest.fixture(scope="module")
def tiny_loaders(tiny_sample):
    from bgremove_utils.data.dataset import make_loaders

    return make_loaders(tiny_sample, image_size=32, batch_size=8)
