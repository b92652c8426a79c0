import functools
import json

import pytest
import torch

from bgremove_utils.data.dataset import make_loaders
from bgremove_utils.errors import CheckpointError, ConfigError
from bgremove_utils.evaluation.metrics import evaluate
from bgremove_utils.models.checkpoint import load_checkpoint, load_generator
from bgremove_utils.settings import make_config
from bgremove_utils.training import loop
from bgremove_utils.training.gan import GAN, train_step
from bgremove_utils.training.loop import one_cycle, train
from bgremove_utils.training.state import restore_training


def test_a_few_training_steps_lower_the_l1_loss(tiny_loaders):
    config = make_config("quick", image_size=32, base_channels=8, d_channels=8, depth=3, lr_g=2e-3)
    gan = GAN.build(config, torch.device("cpu"))
    photo, target = next(iter(tiny_loaders.train))
    background = gan.backgrounds.draw(len(photo))
    first = train_step(photo, target, background, gan, config)["alpha_l1"].item()
    for _ in range(30):
        last = train_step(photo, target, background, gan, config)["alpha_l1"].item()
    assert last < 0.7 * first


def test_training_writes_checkpoints_history_and_samples(tmp_path, tiny_loaders, tiny_run):
    history = train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=2, sample_every=1))
    assert [row["epoch"] for row in history] == [1, 2]
    assert {"loss_d", "loss_g", "alpha_l1", "val_iou", "val_mae", "seconds"} <= set(history[0])
    assert json.loads((tmp_path / "history.json").read_text()) == history
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 2 and state["config"]["g"]["image_size"] == 32
    assert {"generator", "discriminator", "opt_g", "opt_d", "scaler_g", "scaler_d", "rng"} <= set(state)
    assert (tmp_path / "best.pt").is_file() and len(list((tmp_path / "samples").glob("*.png"))) == 2
    assert not list(tmp_path.glob("*.tmp"))  # no temporary files left behind


@pytest.mark.parametrize("keep, kept_epoch", [("last", 3), ("best", 2)])
def test_best_pt_holds_the_last_epoch_or_the_best_validated_one(tmp_path, tiny_loaders, tiny_run, keep, kept_epoch):
    scripted = iter([0.5, 0.7, 0.6])  # validation IoU of epochs 1-3: the best is not the last

    def epoch_with_scripted_iou(*args, **kwargs):
        return real_epoch(*args, **kwargs) | {"val_iou": next(scripted)}

    real_epoch = loop.train_epoch
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "train_epoch", epoch_with_scripted_iou)
        train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=3, keep=keep))
    kept, last = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "last.pt")
    assert kept["epoch"] == kept_epoch
    same = all(torch.equal(kept["generator"][k], last["generator"][k]) for k in last["generator"])
    assert same == (kept_epoch == 3)


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


TINY_CONFIG = {"image_size": 32, "base_channels": 8, "d_channels": 8, "depth": 3}


def test_resume_reads_the_checkpoint_onto_the_cpu_whatever_the_training_device(tmp_path, tiny_loaders, tiny_run):
    # Read onto a GPU, the random generators' states were refused (torch.set_rng_state takes CPU byte
    # tensors only) and Adam's step counts landed there too. "meta" stands in for that device here:
    # a file read onto it fails the same checks.
    train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))
    config = make_config("quick", **TINY_CONFIG, epochs=2)
    gan = GAN.build(config, torch.device("cpu"))
    gan.device = torch.device("meta")  # where a GPU run would have read the file to
    history, _, start, _ = restore_training(tmp_path / "last.pt", gan, tiny_loaders, config)
    assert start == 1 and [row["epoch"] for row in history] == [1]
    steps = [s["step"] for opt in (gan.opt_g, gan.opt_d) for s in opt.state_dict()["state"].values()]
    assert steps and all(step.device.type == "cpu" for step in steps)  # where Adam keeps them


def test_a_checkpoint_without_float16_resumes_with_it_on_fresh_loss_scalers(tmp_path, tiny_loaders, tiny_run):
    # float32 here: the checkpoint's scaler states are empty; GradScaler("cpu", enabled=True) stands in for
    # the float16 run on CUDA that resumes it (loading an empty state raised "The source state dict is empty")
    train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))
    config = make_config("quick", **TINY_CONFIG, epochs=2)
    gan = GAN.build(config, torch.device("cpu"))
    gan.scaler_g, gan.scaler_d = (torch.amp.GradScaler("cpu", enabled=True) for _ in range(2))
    restore_training(tmp_path / "last.pt", gan, tiny_loaders, config)
    assert gan.scaler_g.is_enabled() and gan.scaler_g.get_scale() == gan.scaler_d.get_scale() == 2.0**16  # fresh
    state = load_checkpoint(tmp_path / "last.pt")  # a checkpoint with one scaler for both networks
    scaled = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0).state_dict()
    torch.save(
        {k: v for k, v in state.items() if not k.startswith("scaler_")} | {"scaler": scaled}, tmp_path / "one.pt"
    )
    restore_training(tmp_path / "one.pt", gan, tiny_loaders, config)
    assert gan.scaler_g.get_scale() == gan.scaler_d.get_scale() == 1024.0


def test_resume_with_more_epochs_than_planned_learns_in_a_new_cycle(tmp_path, tiny_loaders, tiny_run):
    train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=2))  # planned for 2 epochs: annealed by the end
    history = train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path, epochs=5))
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    peak, rates = make_config("quick").lr_g, [row["lr_g"] for row in history]
    assert rates[1] < 1e-3 * peak  # the first run had annealed by its last epoch...
    assert rates[2] > 0.5 * peak  # ...and, resumed, warms up again: the new epochs learn
    assert rates[-1] < 1e-3 * peak  # and anneals by the new end


def _train_recording_rates(loaders, run: dict, stop_after: int | None = None, **options) -> list[float]:
    """`train`, returning G's learning rate at each step; `stop_after` steps: Ctrl-C there."""
    rates, real_step = [], loop.train_step

    def step(photo, target, background, gan, *args, **kwargs):
        if len(rates) == stop_after:
            raise KeyboardInterrupt
        rates.append(gan.opt_g.param_groups[0]["lr"])
        return real_step(photo, target, background, gan, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "train_step", step)
        train(loaders=loaders, **run, **options)
    return rates


def test_a_second_resume_of_an_extended_run_carries_on_its_cycle(tmp_path, tiny_loaders, tiny_run):
    steps = len(tiny_loaders.train)  # per epoch
    for folder in ("once", "twice"):
        _train_recording_rates(tiny_loaders, tiny_run(tmp_path / folder, epochs=2))
    straight = _train_recording_rates(tiny_loaders, tiny_run(tmp_path / "once", epochs=5), resume=True)
    stopped = _train_recording_rates(
        tiny_loaders, tiny_run(tmp_path / "twice", epochs=5), resume=True, stop_after=steps + 1
    )  # Ctrl-C in epoch 4: last.pt holds epoch 3
    again = _train_recording_rates(tiny_loaders, tiny_run(tmp_path / "twice", epochs=5), resume=True)
    assert stopped[:steps] == straight[:steps]
    assert again == pytest.approx(straight[steps:], rel=1e-9)  # epochs 4 and 5 at the rates of one run


def test_resume_with_a_constant_rate_uses_the_rates_given_now(tmp_path, tiny_loaders, tiny_run):
    constant = {"lr_schedule": "constant", "lr_g": 1e-4, "lr_d": 1e-5}
    train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1, **constant))
    lower = {**constant, "lr_g": 1e-6, "lr_d": 1e-7}  # what the divergence message tells a learner to do
    rates = _train_recording_rates(tiny_loaders, tiny_run(tmp_path, epochs=2, **lower), resume=True)
    assert set(rates) == {1e-6}
    assert load_checkpoint(tmp_path / "last.pt")["opt_d"]["param_groups"][0]["lr"] == 1e-7


def _rates(schedule: torch.optim.lr_scheduler.LRScheduler, steps: int) -> list[float]:
    rates = []
    for _ in range(steps):
        rates.append(schedule.optimizer.param_groups[0]["lr"])
        schedule.optimizer.step()
        schedule.step()
    return rates


def test_one_cycle_warms_up_anneals_and_carries_on_from_a_saved_state():
    adam = lambda: torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    rates = _rates(one_cycle(adam(), 1.0, 100, warmup=0.15), 100)
    assert rates[0] == pytest.approx(1 / 25) and max(rates) == pytest.approx(1.0, rel=1e-3)
    assert 13 <= rates.index(max(rates)) <= 15 and rates[-1] < 1e-3  # warm-up: 15% of the steps
    short = _rates(one_cycle(adam(), 1.0, 100, warmup=0.05), 100)
    assert 4 <= short.index(max(short)) <= 5 and short[3] > rates[3]  # a shorter warm-up: the peak sooner
    halfway = one_cycle(adam(), 1.0, 100, warmup=0.15)
    _rates(halfway, 60)
    resumed = one_cycle(adam(), 1.0, 100, warmup=0.15, saved=halfway.state_dict())
    assert _rates(resumed, 40) == pytest.approx(rates[60:])  # the same steps as without a break


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
        ({"warmup": 1.5}, "warmup=1.5: a share of the steps"),
        ({"zoom_out": 0}, "zoom_out=0: must be positive"),
        ({"zoom_out": 1.5}, "zoom_out=1.5: a share of the picture's side"),
        ({"unlabelled": "builtin"}, r"unknown training argument\(s\) \['unlabelled'\]"),
    ]:
        with pytest.raises(ConfigError, match=match):
            train(profile="quick", data_root=str(tmp_path / "nothing_here"), **bad)


def test_training_on_the_sample_beats_the_trivial_baseline(trained_run, sample_root):
    checkpoints, history = trained_run
    g = load_generator(checkpoints / "best.pt")
    test = make_loaders(sample_root, image_size=g.config.image_size, batch_size=32, augment=False).test
    results = evaluate(g, test)
    # A tiny model, 4 epochs at 32 px (seconds): IoU 0.50 against the border-colour baseline's 0.41 (seed 0).
    # The quick profile, which notebook 3 trains, reaches 0.60 at 64 px in half a minute.
    assert results["model"]["iou"] > results["baseline"]["iou"] + 0.05
    assert results["model"]["mae"] < results["baseline"]["mae"]
    assert history[-1]["alpha_l1"] < history[0]["alpha_l1"]


def test_a_config_object_trains_and_arguments_override_it(tmp_path, tiny_loaders):
    config = make_config("quick", image_size=32, base_channels=8, d_channels=8, depth=3, epochs=5)
    history = train(config, loaders=tiny_loaders, epochs=1, checkpoint_dir=str(tmp_path), progress=False)
    assert len(history) == 1
    assert load_checkpoint(tmp_path / "last.pt")["config"]["g"]["base_channels"] == 8


def test_validation_runs_g_over_the_validation_split_once_an_epoch(tmp_path, tiny_loaders, tiny_run):
    class Counted:  # the validation loader, counting its passes
        def __init__(self, loader):
            self.loader, self.passes, self.dataset = loader, 0, loader.dataset

        def __iter__(self):
            self.passes += 1
            return iter(self.loader)

        def __len__(self):
            return len(self.loader)

    val = Counted(tiny_loaders.val)
    history = train(loaders=tiny_loaders._replace(val=val), **tiny_run(tmp_path, epochs=2))
    assert val.passes == 1 + 2  # the fixed sample pictures once, then one pass an epoch: metrics and loss
    g = load_generator(tmp_path / "last.pt")
    g.predict = functools.partial(g.predict, mirror=False)  # validation asks G once, not with the mirror image
    alone = evaluate(g, tiny_loaders.val, baseline=False)["model"]
    assert history[-1]["val_iou"] == pytest.approx(alone["iou"], abs=1e-6)
    assert history[-1]["val_mae"] == pytest.approx(alone["mae"], abs=1e-6) and history[-1]["val_loss"] > 0


def test_training_runs_nchw_on_every_device_and_draws_ds_backgrounds_there():
    # measured: oneDNN's bfloat16 step 1.11-1.23x faster in NCHW than channels_last on an AMD EPYC; on a
    # GPU channels_last beside instance norm copies each norm's output twice, and is not measured there
    gan = GAN.build(make_config("quick", image_size=32, base_channels=8, d_channels=8, depth=3), torch.device("cpu"))
    conv = next(m for m in gan.g.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()
    background = gan.backgrounds.draw(5)
    assert background.shape == (5, 3, 32, 32) and background.device == gan.device and background.is_contiguous()


def test_history_has_a_validation_loss_and_a_finished_run_prints_one_line(tmp_path, tiny_loaders, capsys):
    config = make_config("quick", image_size=32, base_channels=8, d_channels=8, depth=3, epochs=1, amp=False)
    history = train(config, loaders=tiny_loaders, checkpoint_dir=str(tmp_path), progress=True)
    terms = ("alpha_l1", "alpha_bce", "colour_l1", "alpha_iou")
    assert history[0]["val_loss"] > 0 and abs(history[0]["val_loss"] - sum(history[0][k] for k in terms)) < 2
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line.startswith("quick on cpu: epochs 1-1 in ") and "validation IoU" in last_line
    assert "the loop waited for data" in last_line


def test_history_says_how_long_the_loop_waited_for_data_and_validated(tmp_path, tiny_loaders, tiny_run):
    (row,) = train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))
    assert 0 < row["data_wait"] < 1  # a share of the training pass: loading takes some of it, stepping the rest
    assert 0 < row["val_seconds"] < row["seconds"]


def test_a_slow_loader_shows_in_the_data_wait(tmp_path, tiny_loaders, tiny_run):
    import time

    class Slow(torch.utils.data.Dataset):  # the same pairs, each 50 ms late: most of a tiny model's step
        def __len__(self):
            return len(tiny_loaders.train.dataset)

        def __getitem__(self, i):
            time.sleep(0.05)
            return tiny_loaders.train.dataset[i]

    slow = tiny_loaders._replace(train=torch.utils.data.DataLoader(Slow(), batch_size=8, drop_last=True))
    fast = train(loaders=tiny_loaders, **tiny_run(tmp_path / "fast", epochs=1))[0]["data_wait"]
    late = train(loaders=slow, **tiny_run(tmp_path / "slow", epochs=1))[0]["data_wait"]
    assert late > 0.5 > fast


def test_training_stops_at_the_first_epoch_that_reaches_the_iou_asked_for(tmp_path, tiny_loaders, tiny_run):
    history = train(loaders=tiny_loaders, stop_at_iou=0.0, **tiny_run(tmp_path / "a", epochs=3))
    assert len(history) == 1  # any IoU reaches 0
    history = train(loaders=tiny_loaders, stop_at_iou=1.01, **tiny_run(tmp_path / "b", epochs=2))
    assert len(history) == 2  # none reaches more than 1: the planned epochs


def test_without_epochs_a_run_makes_as_many_as_its_steps_take_whatever_the_folders_size(
    tmp_path, tiny_loaders, tiny_run
):
    batches = len(tiny_loaders.train)
    history = train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=None, steps=3 * batches))
    assert len(history) == 3
    assert load_checkpoint(tmp_path / "last.pt")["schedulers"][0]["total_steps"] == 3 * batches + 1
    assert make_config("cpu", steps=750).planned_epochs(15) == 50  # the sample's 480 training pairs at batch 32
    assert make_config("cpu", steps=750).planned_epochs(34) == 22  # 1,115 pairs: fewer epochs, the same steps
    assert make_config("cpu", epochs=5).planned_epochs(34) == 5  # epochs given: those
