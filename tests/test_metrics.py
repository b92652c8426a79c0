"""The matting benchmark's errors (SAD, MSE, gradient, connectivity) on tiny mattes whose values are
worked out by hand, and how `evaluate` gathers them: over batches, and across processes."""

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from scipy import ndimage

from bgremove_utils.evaluation.metrics import (
    connectivity_error,
    evaluate,
    gradient_error,
    gradient_magnitude,
    hole_count,
    hole_error,
    matte_metrics,
    metrics_table,
    per_image_iou_mae,
    per_image_matting_errors,
    sad_error,
)

KEYS = {"iou", "mae", "psnr", "sad", "mse", "grad", "conn", "holes"}


def _matte(rows) -> torch.Tensor:
    """A (1, 1, H, W) matte from its rows."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def _soft_mattes(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """`n` blurred blobs (n, 1, size, size), with soft edges and specks, in [0, 1]."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).random((n, size, size)), (0, 2, 2))
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return torch.from_numpy(np.clip((noise - 0.4) * 4, 0, 1)).float()[:, None]


def _batch(true_alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(photo, RGBA target) whose photo carries the true alpha in its red channel, for `_Oracle`."""
    photo = torch.cat([true_alpha, torch.full_like(true_alpha, 0.3), torch.full_like(true_alpha, 0.6)], 1)
    return photo, torch.cat([photo, true_alpha], 1)


class _Oracle(torch.nn.Module):
    """A 'generator' that predicts the true alpha (read off the photo's red channel of `_batch`)."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # evaluate finds the device from a parameter

    def predict(self, photo: torch.Tensor) -> torch.Tensor:  # as GModel.predict: RGBA in eval mode
        return torch.cat([photo, photo[:, :1]], 1)


def test_sad_sums_the_absolute_differences_of_each_picture():
    true = torch.zeros(2, 1, 4, 4)
    pred = true.clone()
    pred[0, 0, 0, 0], pred[0, 0, 1, 2] = 0.5, 0.25
    true[1, 0, 3, 3] = 1.0
    assert sad_error(pred, true).tolist() == [0.75, 1.0]


def test_mse_is_the_mean_squared_alpha_difference_per_picture_and_in_the_collection():
    true = _matte([[0.0] * 4] * 4)
    pred = true.clone()
    pred[..., 0, 0], pred[..., 2, 3] = 0.5, 1.0
    assert per_image_matting_errors(pred, true)["mse"] == [pytest.approx((0.25 + 1.0) / 16)]
    metrics = matte_metrics()
    metrics.update(pred, *_batch(true))
    assert metrics.compute()["mse"] == pytest.approx((0.25 + 1.0) / 16)


def test_gradient_magnitude_of_a_ramp_is_its_slope():
    # alpha = 0.012 x + 0.016 y: the derivatives are 0.012 and 0.016, the magnitude 0.02 (3-4-5), away
    # from the border, where the repeated edge pixels flatten the ramp.
    y, x = torch.meshgrid(torch.arange(30.0), torch.arange(30.0), indexing="ij")
    magnitude = gradient_magnitude((0.012 * x + 0.016 * y)[None, None])[0, 0]
    assert magnitude[8:-8, 8:-8] == pytest.approx(torch.full((14, 14), 0.02), rel=1e-3)
    assert magnitude[0, 0] < 0.015


def test_gradient_error_ignores_a_constant_offset_and_is_zero_for_identical_mattes():
    matte = _soft_mattes(2) * 0.5
    assert gradient_error(matte, matte).tolist() == [0.0, 0.0]
    assert gradient_error(matte + 0.5, matte).max() < 1e-10  # same edges, other level: SAD sees it, Grad not
    assert sad_error(matte + 0.5, matte).min() > 100


def test_gradient_error_matches_scipy_gaussian_derivatives_for_a_shifted_step():
    # An independent reference: scipy's first-order Gaussian derivative filters (sigma 1.4, borders
    # repeated), the magnitudes' squared difference summed. Checks the kernel, its scale and the borders.
    step = np.zeros((12, 12))
    step[:, 6:] = 1.0
    shifted = np.roll(step, -2, axis=1)  # the edge two pixels to the left
    step[4:, :] *= 0.5  # and a horizontal edge too, so both derivatives count

    def magnitude(a: np.ndarray) -> np.ndarray:
        d = [ndimage.gaussian_filter(a, 1.4, order=order, mode="nearest") for order in ((0, 1), (1, 0))]
        return np.hypot(*d)

    expected = ((magnitude(step) - magnitude(shifted)) ** 2).sum()
    assert expected > 1
    assert gradient_error(_matte(step), _matte(shifted)).item() == pytest.approx(expected, rel=1e-5)


def test_connectivity_error_is_zero_for_identical_mattes():
    mattes = _soft_mattes(3)
    assert connectivity_error(mattes, mattes).tolist() == [0.0, 0.0, 0.0]


def test_connectivity_error_counts_a_detached_speck():
    # The object is columns 0-1. A predicted speck of alpha 1 at (2, 4), where the truth is 0, never
    # lies in the object's component: its level is 0, phi_pred = 1 - 1 = 0 against phi_true = 1.
    true = _matte([[1, 1, 0, 0, 0]] * 5)
    pred = true.clone()
    pred[..., 2, 4] = 1.0
    assert connectivity_error(pred, true).item() == pytest.approx(1.0)


def test_connectivity_error_ignores_alpha_within_0_15_above_the_level():
    # A faint detached speck of 0.1: d = 0.1 - 0 < 0.15, so phi_pred = 1 = phi_true. SAD counts it.
    true = _matte([[1, 1, 0, 0, 0]] * 5)
    pred = true.clone()
    pred[..., 2, 4] = 0.1
    assert connectivity_error(pred, true).item() == 0.0
    assert sad_error(pred, true).item() == pytest.approx(0.1)


def test_connectivity_error_forgives_a_small_difference_only_where_the_pixel_joins_the_object():
    # (0, 4): truth 0.6, prediction 0.5. Detached (column 3 empty): level 0, phi 0.5 vs 0.4, cost 0.1.
    # Joined by (0, 3) = 1: it stays in the object up to t = 0.5 (level 0.5): d = 0 and 0.1, both
    # under 0.15, phi 1 and 1, cost 0.
    detached = _matte([[1, 1, 1, 0, 0.6], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]])
    joined = _matte([[1, 1, 1, 1, 0.6], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]])
    lower = torch.zeros_like(detached)
    lower[..., 0, 4] = 0.1  # the prediction: the truth less 0.1 at (0, 4)
    assert connectivity_error(detached - lower, detached).item() == pytest.approx(0.1)
    assert connectivity_error(joined - lower, joined).item() == 0.0


def test_connectivity_error_joins_pixels_by_their_edges_not_their_corners():
    # As above, but (0, 4) touches the object only at a corner, through (1, 3): 4-connected, it is
    # detached (level 0) and its 0.1 counts.
    true = _matte([[1, 1, 1, 0, 0.6], [1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    pred = true.clone()
    pred[..., 0, 4] = 0.5
    assert connectivity_error(pred, true).item() == pytest.approx(0.1)


def test_connectivity_level_is_the_last_threshold_before_a_thin_bridge_breaks():
    # The bridge (0, 3) is 1 in truth but 0.3 in the prediction: from t = 0.4 on, the bridge and the
    # pixel beyond it, (0, 4), fall out of the object: both get level 0.3. Bridge: d_pred = 0, phi 1;
    # d_true = 0.7, phi 0.3: cost 0.7. Beyond: d = 0.35 - 0.3 and 0.4 - 0.3, both under 0.15: cost 0
    # (with level 0 it would cost |0.65 - 0.6| = 0.05). SAD is 0.75.
    true = _matte([[1, 1, 1, 1, 0.4], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]])
    pred = _matte([[1, 1, 1, 0.3, 0.35], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]])
    assert connectivity_error(pred, true).item() == pytest.approx(0.7)
    assert sad_error(pred, true).item() == pytest.approx(0.75)


def test_connectivity_error_of_a_batch_is_that_of_each_picture_alone():
    # A batch is labelled at once: no component may run from one picture into the next.
    true, pred = _soft_mattes(4, seed=8), _soft_mattes(4, seed=9)
    alone = [connectivity_error(p[None], t[None]).item() for p, t in zip(pred, true)]
    assert connectivity_error(pred, true).tolist() == pytest.approx(alone)


def test_metrics_accumulated_over_uneven_batches_equal_the_mean_over_pictures():
    true, pred = _soft_mattes(4, seed=1), _soft_mattes(4, seed=2)
    metrics = matte_metrics()
    for part in (slice(0, 3), slice(3, 4)):  # a batch of 3 then of 1: a mean of batch means would differ
        metrics.update(pred[part], *_batch(true[part]))
    totals = metrics.compute()
    for name, values in per_image_matting_errors(pred, true).items():
        assert min(values) < max(values)  # the pictures differ, so the weighting matters
        assert totals[name] == pytest.approx(np.mean(values), rel=1e-5), name


def test_holes_are_background_components_enclosed_by_the_object_not_those_at_the_border():
    ring = _matte(
        [
            [0, 0, 0, 0, 0, 0, 0],
            [0, 1, 1, 1, 1, 1, 0],
            [0, 1, 0, 1, 0, 1, 0],  # two holes, one pixel each
            [0, 1, 1, 1, 1, 1, 0],
            [0, 0, 0, 0, 0, 0, 0],
        ]
    )
    cup = ring.clone()
    cup[..., 2, 5:] = 0  # the right-hand hole opened to the outside: a bay, not a hole
    soft = ring * 0.6  # alpha 0.6: still the object (at 0.5)
    empty = torch.zeros_like(ring)  # no object: no hole; nor does a background touching the border count
    diagonal = _matte([[1, 1, 1, 1], [1, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 1]])  # 4-connectivity: two holes
    assert hole_count(torch.cat([ring, cup, soft, empty])).tolist() == [2, 1, 2, 0]
    assert hole_count(diagonal).tolist() == [2]
    assert hole_error(torch.cat([cup, empty]), torch.cat([ring, ring])).tolist() == [1.0, 2.0]


def test_a_perfect_prediction_scores_zero_error_on_every_metric():
    loader = [_batch(_soft_mattes(3, seed=3)), _batch(_soft_mattes(2, seed=4))]
    results = evaluate(_Oracle(), loader)
    assert set(results) == {"model", "baseline"}
    assert set(results["model"]) == set(results["baseline"]) == KEYS
    model, baseline = results["model"], results["baseline"]
    assert model["iou"] == 1.0 and model["psnr"] == float("inf")
    assert [model[k] for k in ("mae", "sad", "mse", "grad", "conn", "holes")] == [0.0] * 6
    assert min(baseline[k] for k in ("mae", "sad", "mse", "grad", "conn")) > 0


def test_the_metrics_table_shows_all_eight_metrics_and_their_units_for_each_split():
    row = dict(iou=0.9, mae=0.02, psnr=30.0, sad=81.94, mse=0.0051, grad=3.21, conn=60.25, holes=0.5)
    results = {"model": row, "baseline": {k: v * 2 for k, v in row.items()}}
    header, model, baseline, new, _ = metrics_table({"test": results, "new_photos": results}).splitlines()
    assert header.split()[:8] == ["IoU", "MAE", "PSNR", "SAD", "MSE", "Grad", "Conn", "Holes"]
    assert "sums over a picture, mean over pictures" in header
    assert model.split() == ["test", "model", "0.900", "0.020", "30.00", "81.9", "0.0051", "3.21", "60.2", "0.50"]
    assert float(baseline.split()[5]) == pytest.approx(163.9) and new.split()[:2] == ["new_photos", "model"]


def _evaluate_own_share(rank: int, store: str, loader: list, out: str) -> None:
    """One of two gloo processes: evaluate the pictures dealt to it; rank 0 saves what it computes."""
    torch.set_num_threads(1)  # as in a DataLoader worker: no OpenMP pool inherited across the fork
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        results = evaluate(_Oracle(), loader[rank::2])
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def test_metrics_add_up_across_processes(tmp_path):
    # Under torchrun, each process evaluates its own share (here 2 and 1 pictures): compute() sums the
    # states of both, so the result is the whole split's.
    loader = [_batch(_soft_mattes(1, seed=seed)) for seed in (5, 6, 7)]
    args = (str(tmp_path / "store"), loader, str(tmp_path / "out.pt"))
    mp.start_processes(_evaluate_own_share, args, nprocs=2, start_method="fork")  # fork: no imports again
    shared = torch.load(tmp_path / "out.pt")["baseline"]
    alone = evaluate(None, loader)["baseline"]
    assert shared == pytest.approx(alone, rel=1e-5)
    assert alone != pytest.approx(evaluate(None, loader[0::2])["baseline"], rel=1e-3)  # the shares differ


def test_a_pictures_own_iou_is_1_for_an_empty_picture_predicted_empty_and_the_split_pools_pixels():
    empty, small = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    small[..., :2, :2] = 1  # 4 pixels of object, all missed
    ious, _ = per_image_iou_mae(torch.cat([empty, empty]), torch.cat([empty, small]))
    assert ious == [1.0, 0.0]
    big, half = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    big[..., :, :4], half[..., :, :2] = 1, 1  # 32 true pixels, 16 found
    metrics = matte_metrics()
    for pred, true in ((empty, small), (half, big)):
        metrics.update(pred, torch.zeros(1, 3, 8, 8), torch.cat([torch.zeros(1, 3, 8, 8), true], 1))
    assert metrics.compute()["iou"] == pytest.approx(16 / 36)  # pooled: 16 of 4 + 32, not the mean of 0 and 0.5


def test_evaluate_pools_the_iou_of_an_imperfect_prediction_over_the_split():
    class HalfOracle(_Oracle):  # finds the left half of each object only
        def predict(self, photo: torch.Tensor) -> torch.Tensor:
            alpha = photo[:, :1].clone()
            alpha[..., alpha.shape[-1] // 2 :] = 0
            return torch.cat([photo, alpha], 1)

    true = torch.zeros(2, 1, 8, 8)
    true[0, 0, 2:6, 2:6], true[1, 0, :, 1:7] = 1, 1  # 16 pixels (8 on the left), 48 pixels (24 on the left)
    loader = [_batch(true[:1]), _batch(true[1:])]
    results = evaluate(HalfOracle(), loader)["model"]
    assert results["iou"] == pytest.approx((8 + 24) / (16 + 48))
    assert results["sad"] == pytest.approx((8 + 24) / 2)  # per picture: the pixels missed, the mean of 8 and 24
