"""Settings for every test run from the repository root, the notebooks nbval executes included.

The kernels nbval starts inherit this process's environment: they train the quick profile, and
they keep their data, checkpoints and outputs in one temporary course folder ($BGREMOVE_HOME),
so that running the tests never replaces a learner's own checkpoints/best.pt.
"""

import os
import tempfile
from pathlib import Path

import pytest

REPOSITORY_DATA = Path(__file__).resolve().parent / "data"

os.environ.setdefault("BGREMOVE_PROFILE", "quick")  # the notebooks train the quick profile under CI
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # silences jupyter_core's path-migration warning
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """Start each notebook's kernel (nbval does it while setting up the first cell) with
    $BGREMOVE_HOME set to one folder shared by all notebooks of this run, under pytest's own
    temporary folder (pytest keeps the last three runs' and removes older ones)."""
    if item.path.suffix != ".ipynb" or "BGREMOVE_HOME" in os.environ:
        return (yield)
    if not hasattr(item.config, "_course_home"):
        factory = getattr(item.config, "_tmp_path_factory", None)  # what the tmp_path_factory fixture uses
        home = factory.mktemp("course_home") if factory else tempfile.mkdtemp(prefix="bgremove-notebooks-")
        item.config._course_home = str(link_course_data(Path(home)))
    os.environ["BGREMOVE_HOME"] = item.config._course_home
    try:
        return (yield)
    finally:
        del os.environ["BGREMOVE_HOME"]  # only the kernels see it, not the package's own tests


def link_course_data(home: Path) -> Path:
    """A temporary course folder `home` that reads the repository's real photographs (data/real-*,
    linked, never written) and keeps everything else it makes (the sample, checkpoints, outputs)
    to itself, as a clone does."""
    (home / "data").mkdir(parents=True, exist_ok=True)
    for folder in sorted(REPOSITORY_DATA.glob("real-*")):
        (home / "data" / folder.name).symlink_to(folder, target_is_directory=True)
    return home


@pytest.fixture(scope="session")
def link_course():
    """`link_course_data`, for the tests that set $BGREMOVE_HOME to a course folder of their own."""
    return link_course_data
