"""Settings: a profile with any setting replaced by its own name, and None a value like any other."""

from bgremove_utils import cli
from bgremove_utils.settings import make_config, with_settings


def test_a_setting_given_as_none_is_none_and_one_not_given_keeps_the_profiles():
    assert make_config("cpu").unlabelled == "builtin"
    assert make_config("cpu", unlabelled=None).unlabelled is None  # the full profile's way to say "none"
    mine = make_config("cpu", data_root="mine", bg_path="photos", checkpoint_dir="runs")
    back = with_settings(mine, data_root=None, bg_path=None, checkpoint_dir=None)
    assert (back.data.data_root, back.data.bg_path, back.checkpoint_dir) == (None, None, None)
    kept = with_settings(mine, epochs=3)
    assert (kept.epochs, kept.data.data_root, kept.checkpoint_dir) == (3, "mine", "runs")


def test_the_cli_passes_train_only_the_flags_given(monkeypatch):
    passed = {}
    monkeypatch.setattr(cli, "train", lambda **kwargs: passed.update(kwargs) or [])
    assert cli.main(["train", "--epochs", "3", "--no-augment"]) == 0
    settings = {k: v for k, v in passed.items() if k not in ("resume", "progress")}
    assert settings == {"epochs": 3, "augment": False}  # the rest: the profile's, not None
