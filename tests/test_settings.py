"""Settings: a profile with any setting replaced by its own name, and None a value like any other."""

from bgremove_utils import cli
from bgremove_utils.settings import TrainConfig, make_config, with_settings


def test_a_setting_given_as_none_is_none_and_one_not_given_keeps_the_profiles():
    assert make_config("cpu", epochs=3).epochs == 3
    assert with_settings(make_config("cpu", epochs=3), epochs=None).epochs is None  # the way to say "from steps"
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


def test_the_cli_prints_the_validation_splits_scores_when_training_ends(monkeypatch, capsys):
    row = {"epoch": 22, "val_iou": 0.871, "val_mae": 0.05, "val_psnr": 20.0, "val_sad": 300.0, "val_mse": 0.04}
    row |= {"val_grad": 7.0, "val_conn": 280.0, "val_holes": 1.25}
    monkeypatch.setattr(cli, "train", lambda **kwargs: [row])
    assert cli.main(["train", "--data-root", "mine"]) == 0
    out = capsys.readouterr().out
    assert "epoch 22: val IoU 0.871" in out
    line = next(line for line in out.splitlines() if line.startswith("validation"))
    assert line.split()[2:] == ["0.871", "0.050", "20.00", "300.0", "0.0400", "7.00", "280.0", "1.25"]


def test_rec_weight_is_still_understood_by_its_earlier_name_l1_weight(monkeypatch):
    assert make_config("cpu", l1_weight=5.0).rec_weight == 5.0
    saved = make_config("cpu").to_dict() | {"l1_weight": 7.0}  # a checkpoint's config of before the new name
    del saved["rec_weight"]
    assert TrainConfig.from_dict(saved).rec_weight == 7.0
    passed = {}
    monkeypatch.setattr(cli, "train", lambda **kwargs: passed.update(kwargs) or [])
    assert cli.main(["train", "--l1-weight", "3"]) == 0 and passed["rec_weight"] == 3.0


def test_a_checkpoints_config_naming_settings_no_longer_kept_still_loads():
    saved = make_config("cpu").to_dict()
    saved |= {"adv_start": 0.5, "gan_loss": "hinge", "r1_weight": 1.0, "unlabelled": "builtin", "ema_decay": 0.99}
    saved["data"] |= {"composite": True, "stretch": 2.0, "colour_jitter": 0.3}
    saved["d"] |= {"d_scales": 2}
    assert TrainConfig.from_dict(saved) == make_config("cpu")  # the rest of it, as the profile has it
