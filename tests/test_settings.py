"""Settings: a profile with any setting replaced by its own name, and None a value like any other."""

from bgremove_utils import cli
from bgremove_utils.settings import TrainConfig, make_config, with_settings


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


def test_rec_weight_is_still_understood_by_its_earlier_name_l1_weight(monkeypatch):
    assert make_config("cpu", l1_weight=5.0).rec_weight == 5.0
    saved = make_config("cpu").to_dict() | {"l1_weight": 7.0}  # a checkpoint's config of before the new name
    del saved["rec_weight"]
    assert TrainConfig.from_dict(saved).rec_weight == 7.0
    passed = {}
    monkeypatch.setattr(cli, "train", lambda **kwargs: passed.update(kwargs) or [])
    assert cli.main(["train", "--l1-weight", "3"]) == 0 and passed["rec_weight"] == 3.0
