import json

import pytest
import torch

from bgremove_utils.checkpoint import load_checkpoint, load_generator
from bgremove_utils.config import make_config
from bgremove_utils.errors import CheckpointError, ConfigError
from bgremove_utils.metrics import evaluate
from bgremove_utils.schedule import OneCycle
from bgremove_utils.train import GAN, train, train_step


def test_a_few_training_steps_lower_the_l1_loss(tiny_loaders):
    config = make_config("quick", image_size=32, base_channels=8, d_channels=8, depth=3, lr_g=2e-3)
    gan = GAN.build(config, torch.device("cpu"))
    photo, target = next(iter(tiny_loaders.train))
    first = train_step(photo, target, gan, config)["alpha_l1"]
    for _ in range(30):
        last = train_step(photo, target, gan, config)["alpha_l1"]
    assert last < 0.7 * first


def test_training_writes_checkpoints_history_and_samples(tmp_path, tiny_loaders, tiny_run):
    history = train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=2, sample_every=1))
    assert [row["epoch"] for row in history] == [1, 2]
    assert {"loss_d", "loss_g", "alpha_l1", "val_iou", "val_mae", "seconds"} <= set(history[0])
    assert json.loads((tmp_path / "history.json").read_text()) == history
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 2 and state["config"]["g"]["image_size"] == 32
    assert {"generator", "discriminator", "opt_g", "opt_d", "scaler", "rng"} <= set(state)
    assert (tmp_path / "best.pt").is_file() and len(list((tmp_path / "samples").glob("*.png"))) == 2
    assert not list(tmp_path.glob("*.tmp"))  # no temporary files left behind


def test_resume_continues_at_the_right_epoch_with_the_same_state(tmp_path, tiny_loaders, tiny_run):
    # constant: a schedule planned for 3 epochs would differ after 2; samples: saving them must not change the run
    constant = {"lr_schedule": "constant", "sample_every": 1}
    straight = train(loaders=tiny_loaders, **tiny_run(tmp_path / "a", epochs=3, **constant))
    train(loaders=tiny_loaders, **tiny_run(tmp_path / "b", epochs=2, **constant))
    resumed = train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path / "b", epochs=3, **constant))
    assert [row["epoch"] for row in resumed] == [1, 2, 3]
    assert resumed[-1]["loss_g"] == pytest.approx(straight[-1]["loss_g"], rel=1e-5)
    a = load_checkpoint(tmp_path / "a" / "last.pt")["generator"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["generator"]
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_resume_with_more_epochs_than_planned_stretches_the_schedule(tmp_path, tiny_loaders, tiny_run):
    train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=2))  # planned for 2 epochs: annealed by the end
    history = train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path, epochs=5))
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    peak, rates = make_config("quick").lr_g, [row["lr_g"] for row in history]
    assert rates[1] < 0.1 * peak  # the first run had annealed by its last epoch...
    assert all(b <= a for a, b in zip(rates[1:], rates[2:]))  # ...and, resumed, goes on down, never back up
    assert rates[-1] < 1e-3 * peak


def test_the_one_cycle_schedule_stretched_goes_on_from_where_it_was():
    schedule = OneCycle(total=100)
    assert schedule(0) == pytest.approx(1 / 25) and schedule(15) == pytest.approx(1.0)
    assert schedule(100) == pytest.approx(1 / 25 / 1e4)
    at_60 = schedule(60)
    schedule.stretch(200, 60)  # resumed at step 60 for 200 steps in all
    assert schedule(60) == pytest.approx(at_60) and schedule(61) < at_60  # no jump, still going down
    assert schedule(150) > schedule(200) == pytest.approx(1 / 25 / 1e4)


def test_resume_with_another_model_configuration_names_the_file(tmp_path, tiny_loaders, tiny_run):
    train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))
    with pytest.raises(CheckpointError, match="last.pt.*base_channels"):
        train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path, base_channels=16))


def test_a_generator_checkpoint_alone_is_enough_for_inference(tmp_path, tiny_loaders, tiny_run):
    train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))
    state = load_checkpoint(tmp_path / "best.pt")
    torch.save({"generator": state["generator"], "config": state["config"]}, tmp_path / "g_only.pt")
    g = load_generator(tmp_path / "g_only.pt")
    assert g(torch.rand(1, 3, 32, 32)).shape == (1, 4, 32, 32)


def test_nonsense_arguments_fail_before_any_data_is_loaded(tmp_path):
    for bad, match in [
        ({"epochs": -1}, "epochs"),
        ({"image_size": 100}, "image_size"),
        ({"device": "cuda:7"}, "device"),
        ({"batch_size": 0}, "batch_size"),
    ]:
        with pytest.raises(ConfigError, match=match):
            train(profile="quick", data_root=str(tmp_path / "nothing_here"), **bad)


def test_quick_training_beats_the_trivial_baseline(quick_run, quick_loaders):
    checkpoints, history = quick_run
    results = evaluate(load_generator(checkpoints / "best.pt"), quick_loaders.test)
    # The sample's real photos are hard for 40 s of training: the quick profile reaches 0.64 here (seed 0
    # and 1), the border-colour baseline 0.41.
    assert results["model"]["iou"] >= 0.55
    assert results["model"]["iou"] > results["baseline"]["iou"] + 0.15
    assert results["model"]["mae"] < results["baseline"]["mae"]
    assert history[-1]["alpha_l1"] < history[0]["alpha_l1"]


def test_a_config_object_trains_and_arguments_override_it(tmp_path, tiny_loaders):
    config = make_config("quick", image_size=32, base_channels=8, d_channels=8, depth=3, epochs=5)
    history = train(config, loaders=tiny_loaders, epochs=1, checkpoint_dir=str(tmp_path), progress=False)
    assert len(history) == 1
    assert load_checkpoint(tmp_path / "last.pt")["config"]["g"]["base_channels"] == 8
