"""The GAN's step: what D sees, gradient accumulation, mixed precision's choice, health warnings,
and a batch too large for the GPU."""

import copy

import pytest
import torch

from bgremove_utils.data.images import over
from bgremove_utils.errors import ConfigError
from bgremove_utils.models.checkpoint import load_checkpoint, load_generator
from bgremove_utils.settings import make_config
from bgremove_utils.training import hardware, loop
from bgremove_utils.training.gan import GAN, adversarial_share, reconstruction_step, train_step
from bgremove_utils.training.hardware import amp_dtype, cpu_has_native_bf16
from bgremove_utils.training.health import warn_if_unhealthy
from bgremove_utils.training.loop import train

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)
TINY = {"image_size": 32, "base_channels": 8, "d_channels": 8, "depth": 3, "amp": False}


def test_a_perfect_cutout_shows_d_exactly_what_the_truth_shows_whatever_its_colour_where_alpha_is_0():
    torch.manual_seed(0)
    truth = torch.rand(2, 4, 16, 16)
    truth[:, 3][truth[:, 3] < 0.4] = 0  # background: alpha exactly 0, as in a real cut-out
    truth[:, :3] *= truth[:, 3:] > 0  # and no colour there, as the sample's cut-outs
    perfect = truth.clone()
    perfect[:, :3] = torch.where(truth[:, 3:] > 0, truth[:, :3], torch.rand(2, 3, 16, 16))  # any colour where alpha = 0
    background = torch.rand(2, 3, 16, 16)
    assert torch.equal(over(perfect, background), over(truth, background))
    leaky = perfect.clone()
    leaky[:, 3][truth[:, 3] == 0] = 0.05  # a faint halo of G's colour on the background
    assert not torch.allclose(over(leaky, background), over(truth, background))


def _grads(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]


def test_accumulating_k_parts_gives_the_update_of_one_k_times_larger_batch(tiny_loaders):
    photo, target = next(iter(tiny_loaders.train))  # 8 pictures
    results = []
    for parts in (1, 4):
        # without spectral norm: its power iteration steps once per forward, so k parts normalise
        # D's weights k times a step, a hair away from one batch's update (3e-4 on g_adv)
        config = make_config("quick", **TINY, grad_accum=parts, d_spectral_norm=False)
        gan = GAN.build(config, torch.device("cpu"))
        torch.manual_seed(1)  # the same backgrounds for D's views
        stats = train_step(photo, target, gan, config)
        results.append((stats, _grads(gan.d) + _grads(gan.g)))  # the gradients each optimizer stepped with
    (one, grads_one), (four, grads_four) = results
    assert one.keys() == four.keys()
    for key in one:
        assert four[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key
    for a, b in zip(grads_one, grads_four):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-6)


def test_bfloat16_only_on_a_cpu_that_has_it_natively(tmp_path, monkeypatch):
    read = hardware.cpu_info.__wrapped__  # /proc/cpuinfo's reader, not cached

    def cpu(flags: str):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 {flags}\n")
        monkeypatch.setattr(hardware, "cpu_info", lambda: read(str(info)))
        return cpu_has_native_bf16()

    assert not cpu("avx2 avx512f avx512bw")  # AVX-512 emulates bfloat16: slower than float32
    assert cpu("avx512f avx512_bf16") and cpu("amx_tile amx_bf16")
    assert hardware.cpu_info()["model name"] == "Some CPU"
    assert read(str(tmp_path / "no_such_file")) == {}  # not Linux
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    assert amp_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    assert amp_dtype(torch.device("cpu")) == torch.bfloat16


def _row(epoch, loss_d=0.69, d_real=0.5, d_fake=0.5, spread=0.2):
    return {"epoch": epoch, "loss_d": loss_d, "d_real": d_real, "d_fake": d_fake, "val_alpha_spread": spread}


def test_health_warns_once_when_d_wins_outright_and_when_g_collapses(recwarn):
    config, warned = make_config("quick"), set()
    history = [_row(1), _row(2)]
    for epoch in range(3, 7):  # D wins from epoch 3 on
        history.append(_row(epoch, loss_d=0.01, d_real=0.99, d_fake=0.01))
        warn_if_unhealthy(history, config, warned)
    assert [str(w.message).split(":")[0] for w in recwarn] == ["D wins outright"]
    for epoch in range(7, 11):  # then G draws the same matte for every photo
        history.append(_row(epoch, spread=0.001))
        warn_if_unhealthy(history, config, warned)
    assert [str(w.message).split(":")[0] for w in recwarn] == ["D wins outright", "G collapsed"]


def test_no_health_warning_for_a_healthy_run_or_an_untrained_start_or_without_the_gan(recwarn):
    history = [_row(epoch, spread=0.001) for epoch in range(1, 4)]  # untrained: every matte alike, yet no collapse
    history += [_row(epoch, loss_d=0.01, d_real=0.99, d_fake=0.01) for epoch in range(4, 8)]
    warn_if_unhealthy(history, make_config("quick", adv_weight=0.0), set())  # D's win does not matter then
    warn_if_unhealthy(history[:3], make_config("quick"), set())
    assert not recwarn.list


def test_a_batch_too_large_for_the_gpu_is_one_clear_error_with_a_size_that_fits(tmp_path, tiny_loaders, monkeypatch):
    real_step = loop.train_step

    def small_memory(photo, target, gan, config, *args, **kwargs):
        if len(photo) // config.grad_accum > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(photo, target, gan, config, *args, **kwargs)

    monkeypatch.setattr(loop, "train_step", small_memory)
    args = {**TINY, "epochs": 1, "checkpoint_dir": str(tmp_path), "progress": False, "sample_every": 0}
    with pytest.raises(ConfigError, match=r"batch_size=8: .* one of 2 does: use batch_size=2, .*grad_accum=4") as info:
        train(profile="quick", loaders=tiny_loaders, **args)
    assert info.value.__cause__ is None
    history = train(profile="quick", loaders=tiny_loaders, grad_accum=4, **args)  # what the message says works
    assert len(history) == 1


def test_running_out_of_memory_in_gs_half_leaves_no_trace_and_names_a_batch_that_fits(tiny_loaders):
    config = make_config("quick", **TINY, ema_decay=0.9)
    gan = GAN.build(config, torch.device("cpu"))
    photo, target = next(iter(tiny_loaders.train))  # 8 pictures
    loop._step(photo, target, gan, config)  # one real step first: the optimizers have a state
    before = {name: copy.deepcopy(part.state_dict()) for name, part in [("d", gan.d), ("g", gan.g), ("ema", gan.ema)]}
    before |= {"opt_d": copy.deepcopy(gan.opt_d.state_dict()), "opt_g": copy.deepcopy(gan.opt_g.state_dict())}
    judge = gan.d.forward

    def small_memory(*args, **kwargs):  # D judging G's cut-outs for G's loss: G's half, where the peak is
        frozen = not any(p.requires_grad for p in gan.d.parameters())
        if frozen and len(args[0]) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return judge(*args, **kwargs)

    gan.d.forward = small_memory
    with pytest.raises(ConfigError, match=r"batch_size=8: .* one of 2 does: use batch_size=2"):
        loop._step(photo, target, gan, config)
    assert all(p.requires_grad for p in gan.d.parameters())  # D trainable again
    assert gan.steps == 1
    for name in ("d", "g", "ema", "opt_d", "opt_g"):
        _assert_same(getattr(gan, name).state_dict(), before[name])


def _assert_same(a, b) -> None:
    """Two state dicts (nested dicts and lists of tensors and numbers) hold the same values."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif torch.is_tensor(a):
        assert torch.equal(a, b)
    else:
        assert a == b


def test_history_records_what_d_says_of_real_and_fake_cutouts(tmp_path, tiny_loaders, tiny_run):
    history = train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))
    row = history[0]
    assert 0 < row["d_fake"] < 1 and 0 < row["d_real"] < 1
    assert row["loss_d"] == pytest.approx(row["d_bce"], rel=1e-2)  # trained with BCE: the reading (bfloat16 aside)


def test_the_moving_average_of_g_after_two_steps_is_the_first_weights_then_a_blend(tiny_loaders):
    config = make_config("quick", **TINY, ema_decay=0.9)
    gan = GAN.build(config, torch.device("cpu"))
    photo, target = next(iter(tiny_loaders.train))
    train_step(photo, target, gan, config)
    first = {k: v.clone() for k, v in gan.g.state_dict().items()}
    train_step(photo, target, gan, config)
    second = gan.g.state_dict()
    for name, averaged in gan.ema.module.state_dict().items():  # 0.9 x the first weights + 0.1 x the second
        torch.testing.assert_close(averaged, 0.9 * first[name] + 0.1 * second[name])
    assert gan.ema.n_averaged.item() == 2


LEVERS = {
    "lr_d": 2e-3,
    "gan_loss": "hinge",
    "r1_weight": 0.01,
    "r1_every": 2,
    "fm_weight": 1.0,
    "d_scales": 2,
    "d_spectral_norm": True,
    "unlabelled": "builtin",
    "unlabelled_batch": 4,
    "ema_decay": 0.9,
}


def test_every_lever_of_the_game_trains_resumes_and_is_recorded(tmp_path, tiny_loaders, tiny_run):
    history = train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1, **LEVERS))
    row = history[0]
    assert row["adv_share"] > 0 and row["r1"] > 0 and row["g_fm"] > 0
    assert 0 < row["d_unlabelled"] < 1 and 0 < row["d_bce"]
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["ema_averaged"] > 0  # best.pt and the export hold the average, the optimizer's weights beside it
    trained, averaged = state["generator_trained"], state["generator"]
    assert any(not torch.equal(trained[k], averaged[k]) for k in trained)
    torch.testing.assert_close(load_generator(tmp_path / "last.pt").state_dict(), averaged)
    history = train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path, epochs=2, **LEVERS))
    assert [r["epoch"] for r in history] == [1, 2]


def test_the_adversarial_share_is_the_ratio_of_the_pulls_on_gs_last_layer():
    head = torch.ones(3, requires_grad=True)
    adversarial, reconstruction = (0.1 * head).sum(), (2.0 * head).sum()
    assert adversarial_share(adversarial + reconstruction, adversarial, head) == pytest.approx(0.05)
    from_d = adversarial + (0.3 * head).sum()  # D's features: D's pull too
    assert adversarial_share(from_d + reconstruction, from_d, head) == pytest.approx(0.2)


def test_game_report_calls_a_d_stuck_at_log_2_blind_not_healthy():
    from bgremove_utils.training.health import game_report

    row = {"epoch": 1, "loss_d": 0.69, "d_real": 0.51, "d_fake": 0.49}
    assert "learnt next to nothing" in game_report([row, {**row, "epoch": 2}])
    barely = {"epoch": 2, "loss_d": 0.67, "d_real": 0.53, "d_fake": 0.47}  # scores apart, loss near log 2
    assert "learnt next to nothing" in game_report([row, barely])
    won = {"epoch": 2, "loss_d": 0.02, "d_real": 0.98, "d_fake": 0.02}
    assert "D won outright" in game_report([row, won])
    alive = {"epoch": 2, "loss_d": 0.55, "d_real": 0.65, "d_fake": 0.35}
    assert "the game is alive" in game_report([row, alive])


def test_before_the_game_starts_g_learns_alone_and_d_is_left_as_it_was(tmp_path, tiny_loaders, tiny_run):
    history = train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=3, adv_start=0.5))  # epochs 1-2: G alone
    assert [("loss_d" in row) for row in history] == [False, False, True]
    assert all(row["loss_g"] > 0 and row["alpha_l1"] > 0 for row in history)
    config = make_config("quick", **TINY)
    gan = GAN.build(config, torch.device("cpu"))
    d_before, g_before = copy.deepcopy(gan.d.state_dict()), copy.deepcopy(gan.g.state_dict())
    photo, target = next(iter(tiny_loaders.train))
    stats = reconstruction_step(photo, target, gan, config)
    assert "loss_d" not in stats and "g_adv" not in stats
    assert all(torch.equal(v, gan.d.state_dict()[k]) for k, v in d_before.items())
    assert any(not torch.equal(v, gan.g.state_dict()[k]) for k, v in g_before.items())


def test_game_report_and_health_read_a_history_whose_first_epochs_trained_g_alone(recwarn):
    from bgremove_utils.training.health import game_report

    alone = [{"epoch": e, "loss_g": 50.0, "val_alpha_spread": 0.2} for e in (1, 2, 3)]
    assert "D has not played yet" in game_report(alone)
    played = {"epoch": 4, "loss_g": 40.0, "loss_d": 0.55, "d_real": 0.65, "d_fake": 0.35, "val_alpha_spread": 0.2}
    report = game_report([*alone, played])
    assert "at epoch 4" in report and "the game is alive" in report
    warn_if_unhealthy([*alone, played], make_config("quick"), set())
    assert not recwarn.list
