"""The GAN's step: what D sees, gradient accumulation, mixed precision's choice, health warnings,
a batch too large for the GPU, and training without D."""

import copy

import pytest
import torch

from bgremove_utils.data.images import over
from bgremove_utils.errors import ConfigError
from bgremove_utils.models import networks
from bgremove_utils.models.checkpoint import load_checkpoint
from bgremove_utils.settings import make_config
from bgremove_utils.training import gan as gan_module
from bgremove_utils.training import hardware, loop
from bgremove_utils.training.gan import GAN, adversarial_share, train_step
from bgremove_utils.training.hardware import amp_dtype, cpu_has_native_bf16, prepare_device
from bgremove_utils.training.health import game_report, warn_if_unhealthy
from bgremove_utils.training.loop import summary_line, train

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


def _floats(stats: dict) -> dict[str, float]:
    return {key: float(value) for key, value in stats.items()}


def test_accumulating_k_parts_gives_the_update_of_one_k_times_larger_batch(tiny_loaders):
    photo, target = next(iter(tiny_loaders.train))  # 8 pictures
    background = torch.rand(8, 3, 32, 32)  # the same backgrounds for D's views
    results = []
    for parts in (1, 4):
        # without spectral norm: its power iteration steps once per forward, so k parts normalise
        # D's weights k times a step, a hair away from one batch's update (3e-4 on g_adv)
        config = make_config("quick", **TINY, grad_accum=parts, d_spectral_norm=False)
        gan = GAN.build(config, torch.device("cpu"))
        stats = _floats(train_step(photo, target, background, gan, config))
        results.append((stats, _grads(gan.d) + _grads(gan.g)))  # the gradients each optimizer stepped with
    (one, grads_one), (four, grads_four) = results
    assert one.keys() == four.keys()
    for key in one:
        assert four[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key
    for a, b in zip(grads_one, grads_four):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-6)


def test_the_step_leaves_its_numbers_on_the_device_for_the_loop_to_read_later(tiny_loaders):
    config = make_config("quick", **TINY)
    gan = GAN.build(config, torch.device("cpu"))
    photo, target = next(iter(tiny_loaders.train))
    stats = train_step(photo, target, gan.backgrounds.draw(len(photo)), gan, config, measure_share=True)
    assert all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad for v in stats.values())
    assert {"loss_d", "d_real", "d_fake", "loss_g", "g_adv", "alpha_l1", "adv_share"} <= set(stats)


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


def test_cuda_trains_in_bfloat16_where_the_gpu_has_it_else_float16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert amp_dtype(torch.device("cuda")) == torch.bfloat16  # an A100, an H100, an L4
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert amp_dtype(torch.device("cuda")) == torch.float16  # a T4, Colab's free GPU


@pytest.mark.parametrize("dtype, scaled", [(torch.float16, True), (torch.bfloat16, False), (None, False)])
def test_float16_gets_a_loss_scaler_for_each_network_and_other_precisions_none(monkeypatch, dtype, scaled):
    monkeypatch.setattr(gan_module, "amp_dtype", lambda device: dtype)  # what a GPU without bfloat16 answers
    gan = GAN.build(make_config("quick", **{**TINY, "amp": True}), torch.device("cpu"))
    assert gan.dtype == dtype
    assert gan.scaler_g.is_enabled() == gan.scaler_d.is_enabled() == scaled
    assert gan.scaler_g is not gan.scaler_d  # G's loss is ~100x D's: one scale cannot suit both


def test_cudnn_picks_its_fastest_convolutions_on_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    prepare_device(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    prepare_device(torch.device("cuda"))  # sets a flag only: no GPU needed to check it
    assert torch.backends.cudnn.benchmark is True


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

    def small_memory(photo, target, background, gan, config, *args, **kwargs):
        if len(photo) // config.grad_accum > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(photo, target, background, gan, config, *args, **kwargs)

    monkeypatch.setattr(loop, "train_step", small_memory)
    args = {**TINY, "epochs": 1, "checkpoint_dir": str(tmp_path), "progress": False, "sample_every": 0}
    with pytest.raises(ConfigError, match=r"batch_size=8: .* one of 2 does: use batch_size=2, .*grad_accum=4") as info:
        train(profile="quick", loaders=tiny_loaders, **args)
    assert info.value.__cause__ is None
    history = train(profile="quick", loaders=tiny_loaders, grad_accum=4, **args)  # what the message says works
    assert len(history) == 1


def test_running_out_of_memory_in_gs_half_leaves_no_trace_and_names_a_batch_that_fits(tiny_loaders):
    config = make_config("quick", **TINY)
    gan = GAN.build(config, torch.device("cpu"))
    photo, target = next(iter(tiny_loaders.train))  # 8 pictures
    background = gan.backgrounds.draw(len(photo))
    loop._step(photo, target, background, gan, config)  # one real step first: the optimizers have a state
    before = {name: copy.deepcopy(getattr(gan, name).state_dict()) for name in ("d", "g", "opt_d", "opt_g")}
    judge = gan.d.forward

    def small_memory(*args, **kwargs):  # D judging G's cut-outs for G's loss: G's half, where the peak is
        frozen = not any(p.requires_grad for p in gan.d.parameters())
        if frozen and len(args[0]) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return judge(*args, **kwargs)

    gan.d.forward = small_memory
    with pytest.raises(ConfigError, match=r"batch_size=8: .* one of 2 does: use batch_size=2"):
        loop._step(photo, target, background, gan, config)
    assert all(p.requires_grad for p in gan.d.parameters())  # D trainable again
    for name in ("d", "g", "opt_d", "opt_g"):
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


def test_history_records_what_d_says_of_real_and_fake_cutouts_and_its_pull_on_g(tmp_path, tiny_loaders, tiny_run):
    history = train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=1))
    row = history[0]
    assert 0 < row["d_fake"] < 1 and 0 < row["d_real"] < 1 and 0 < row["loss_d"]
    assert row["adv_share"] > 0  # measured every few steps: D's term pulls on G's last layer


def test_the_adversarial_share_is_the_ratio_of_the_pulls_on_gs_last_layer():
    head = torch.ones(3, requires_grad=True)
    adversarial, reconstruction = (0.1 * head).sum(), (2.0 * head).sum()
    assert adversarial_share(adversarial + reconstruction, adversarial, head).item() == pytest.approx(0.05)


def test_game_report_calls_a_d_stuck_at_log_2_blind_not_healthy():
    row = {"epoch": 1, "loss_d": 0.69, "d_real": 0.51, "d_fake": 0.49}
    assert "learnt next to nothing" in game_report([row, {**row, "epoch": 2}])
    barely = {"epoch": 2, "loss_d": 0.67, "d_real": 0.53, "d_fake": 0.47}  # scores apart, loss near log 2
    assert "learnt next to nothing" in game_report([row, barely])
    won = {"epoch": 2, "loss_d": 0.02, "d_real": 0.98, "d_fake": 0.02}
    assert "D won outright" in game_report([row, won])
    alive = {"epoch": 2, "loss_d": 0.55, "d_real": 0.65, "d_fake": 0.35}
    assert "the game is alive" in game_report([row, alive])


def test_without_the_gan_no_d_is_built_run_or_stepped(tmp_path, tiny_loaders, tiny_run, monkeypatch):
    config = make_config("quick", **TINY, adv_weight=0)
    gan = GAN.build(config, torch.device("cpu"))
    assert gan.d is None and gan.opt_d is None
    g_before = copy.deepcopy(gan.g.state_dict())
    photo, target = next(iter(tiny_loaders.train))
    stats = train_step(photo, target, gan.backgrounds.draw(len(photo)), gan, config, measure_share=True)
    assert set(stats) == {"loss_g", "alpha_l1", "alpha_bce", "colour_l1", "alpha_iou"}
    assert any(not torch.equal(v, gan.g.state_dict()[k]) for k, v in g_before.items())  # G learnt
    monkeypatch.setattr(networks.DModel, "forward", lambda *a: pytest.fail("D ran without the GAN"))
    history = train(loaders=tiny_loaders, **tiny_run(tmp_path, epochs=2, adv_weight=0))
    assert all("loss_d" not in row and row["loss_g"] > 0 for row in history)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["discriminator"] is None and state["opt_d"] is None and len(state["schedulers"]) == 1
    assert [
        r["epoch"] for r in train(loaders=tiny_loaders, resume=True, **tiny_run(tmp_path, epochs=3, adv_weight=0))
    ] == [1, 2, 3]
    assert "No D" in game_report(history) and "no D (adv_weight 0)" in summary_line(history, "quick", "cpu")
    warn_if_unhealthy(history, config, set())  # nothing to say of a game that was not played


def test_game_report_and_health_read_a_history_whose_first_epochs_had_no_d(recwarn):
    alone = [{"epoch": e, "loss_g": 50.0, "val_alpha_spread": 0.2} for e in (1, 2, 3)]
    assert "No D" in game_report(alone)
    played = {"epoch": 4, "loss_g": 40.0, "loss_d": 0.55, "d_real": 0.65, "d_fake": 0.35, "val_alpha_spread": 0.2}
    report = game_report([*alone, played])
    assert "at epoch 4" in report and "the game is alive" in report
    warn_if_unhealthy([*alone, played], make_config("quick"), set())
    assert not recwarn.list
