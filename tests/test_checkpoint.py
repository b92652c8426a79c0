"""Checkpoints found or made for the notebooks that need one."""

from bgremove_utils.checkpoint import ensure_checkpoint


def test_ensure_checkpoint_returns_an_existing_checkpoint_without_training(tmp_path, capsys):
    (tmp_path / "best.pt").write_bytes(b"")
    assert ensure_checkpoint(tmp_path) == tmp_path / "best.pt"
    assert capsys.readouterr().out == ""


def test_ensure_checkpoint_trains_and_says_so_when_there_is_none(tmp_path, capsys, monkeypatch):
    import importlib

    training = importlib.import_module("bgremove_utils.train")  # the module: the package's `train` is the function
    calls = []

    def fake_train(profile, checkpoint_dir):
        calls.append((profile, checkpoint_dir))
        (tmp_path / "best.pt").write_bytes(b"")

    monkeypatch.setattr(training, "train", fake_train)
    assert ensure_checkpoint(tmp_path) == tmp_path / "best.pt"
    assert calls == [("quick", str(tmp_path))]
    assert "training the 'quick' profile first" in capsys.readouterr().out
