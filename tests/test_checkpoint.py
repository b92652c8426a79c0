"""Checkpoints found or made for the notebooks that need one, in JupyterLab and in Colab."""

import sys
import types
from pathlib import Path

import pytest

from bgremove_utils.course import colab, notebook
from bgremove_utils.course.notebook import ensure_checkpoint
from bgremove_utils.paths import default_checkpoint_dir


@pytest.fixture
def no_training(monkeypatch, tmp_path):
    """train() replaced by a fake that writes an empty best.pt and records its arguments."""
    calls = []

    def fake_train(profile, checkpoint_dir):
        calls.append((profile, checkpoint_dir))
        (tmp_path / "best.pt").write_bytes(b"")

    monkeypatch.setattr(notebook, "train", fake_train)
    return calls


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """A stand-in for google.colab: what `files.upload` returns, what was downloaded or mounted."""
    state = {"upload": {}, "downloaded": [], "mounted": []}
    files = types.SimpleNamespace(upload=lambda: state["upload"], download=state["downloaded"].append)
    drive = types.SimpleNamespace(mount=state["mounted"].append)
    package = types.ModuleType("google.colab")
    package.files, package.drive = files, drive
    monkeypatch.setitem(sys.modules, "google", types.SimpleNamespace(colab=package))
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setattr(colab, "DRIVE_CHECKPOINTS", tmp_path / "drive" / "checkpoints")
    monkeypatch.chdir(tmp_path)
    return state


def test_an_existing_checkpoint_is_used_and_said_so(tmp_path, capsys, no_training):
    (tmp_path / "best.pt").write_bytes(b"")
    assert ensure_checkpoint(tmp_path) == tmp_path / "best.pt"
    assert capsys.readouterr().out.startswith("Using ") and no_training == []


def test_without_a_checkpoint_the_quick_profile_is_trained_and_said_so(tmp_path, capsys, no_training):
    assert ensure_checkpoint(tmp_path) == tmp_path / "best.pt"
    assert no_training == [("quick", str(tmp_path))]
    assert "training the 'quick' profile first" in capsys.readouterr().out


def test_in_colab_an_uploaded_checkpoint_comes_before_training(tmp_path, capsys, no_training, fake_colab):
    fake_colab["upload"] = {"best (1).pt": b"weights"}
    folder = tmp_path / "checkpoints"
    assert ensure_checkpoint(folder) == folder / "best.pt"
    assert (folder / "best.pt").read_bytes() == b"weights" and not (tmp_path / "best (1).pt").exists()
    assert "uploaded" in capsys.readouterr().out and no_training == []


def test_in_colab_a_cancelled_upload_trains(tmp_path, no_training, fake_colab):
    ensure_checkpoint(tmp_path)
    assert no_training == [("quick", str(tmp_path))]


def test_in_colab_checkpoints_can_live_in_google_drive_and_best_pt_can_be_downloaded(tmp_path, fake_colab):
    folder = colab.checkpoint_folder(keep_in_drive=True)
    assert folder == tmp_path / "drive" / "checkpoints" and folder.is_dir()
    assert fake_colab["mounted"] == [str(colab.DRIVE)]
    colab.offer_download(folder / "best.pt")
    assert fake_colab["downloaded"] == [str(folder / "best.pt")]


def test_outside_colab_nothing_is_mounted_uploaded_or_downloaded(tmp_path, capsys):
    assert colab.checkpoint_folder(keep_in_drive=True) == default_checkpoint_dir()
    assert colab.upload_checkpoint(tmp_path) is None
    colab.offer_download(tmp_path / "best.pt")
    assert "notebooks 4 and 5 find it there" in capsys.readouterr().out


def test_outside_colab_the_checkpoint_is_named_as_in_the_course_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BGREMOVE_HOME", str(tmp_path))
    colab.offer_download(tmp_path / "checkpoints" / "best.pt")  # the same words on every machine
    assert capsys.readouterr().out.startswith(f"The checkpoint is {Path('checkpoints', 'best.pt')};")


def test_a_file_of_the_repository_is_found_from_a_course_folder_elsewhere(tmp_path, monkeypatch):
    from bgremove_utils.paths import repository_file

    monkeypatch.setenv("BGREMOVE_HOME", str(tmp_path))  # a course folder without docs/, as the tests' and CI's
    assert repository_file("docs/images/gan_holes.png").is_file()  # notebook 2 shows it
    with pytest.raises(FileNotFoundError, match="no_such.png"):
        repository_file("docs/images/no_such.png")
