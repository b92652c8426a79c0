"""The benchmark's structure, from one `bench --quick` run: its rows, columns and JSON. The figures
are not checked (timed tests are not benchmarks): `python -m bgremove_utils bench` reports them.
"""

import contextlib
import importlib.util
import io
import json
import tempfile

import pytest
import torch

from bgremove_utils.cli import main

SECTIONS = [
    "data pipeline",
    "data wait",
    "train step (D + G)",
    "step's wait for the CPU",
    "train step / fp32 ceiling",
    "inference ",
    "onnxruntime ",
    "IoU 0.70: pix2pix b1",
]
COLUMNS = {"name", "unit", "ours", "plain", "ratio", "higher_is_better", "target", "met", "note"}


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory):
    """(printed table, JSON) of one quick run on the CPU; one thread keeps it short on a busy machine."""
    folder, printed, tempdir = tmp_path_factory.mktemp("bench"), io.StringIO(), tempfile.tempdir
    tempfile.tempdir = str(folder)  # its sample and outputs go under pytest's tmp_path too
    try:
        with contextlib.redirect_stdout(printed):
            assert (
                main(
                    [
                        "bench",
                        "--quick",
                        "--device",
                        "cpu",
                        "--threads",
                        "1",
                        "--zoom-out",
                        "1",
                        "--json",
                        f"{folder}/bench.json",
                    ]
                )
                == 0
            )
    finally:
        tempfile.tempdir = tempdir
    return printed.getvalue(), json.loads((folder / "bench.json").read_text())


def test_quick_bench_writes_each_section_beside_its_baseline_with_the_ratio(quick_bench):
    _, result = quick_bench
    (run,) = result["runs"]
    assert run["meta"]["quick"] and run["meta"]["device"] == "cpu" and run["meta"]["profile"] == "quick"
    assert run["meta"]["config"].endswith("zoom-out 1")  # --zoom-out reaches the runs (the profile's is 0.3)
    names = [row["name"] for row in run["rows"]]
    for section in SECTIONS:
        assert any(name.startswith(section) for name in names), section
    for row in run["rows"]:
        assert set(row) == COLUMNS
        if row["name"].startswith(("IoU ", "data wait", "step's wait")):
            continue  # one epoch of a tiny model may not reach a level ("not reached" is an answer); waits have no peer
        if row["name"].startswith("onnxruntime ") and importlib.util.find_spec("onnxruntime") is None:
            assert row["ours"] is None and 'pip install -e ".[app]"' in row["note"]  # says how to measure it
            continue
        assert row["ours"] > 0 and row["plain"] > 0, row
        expected = row["ours"] / row["plain"] if row["higher_is_better"] else row["plain"] / row["ours"]
        assert row["ratio"] == pytest.approx(expected)  # > 1 always means ours is better
    waits = [row for row in run["rows"] if row["name"].startswith("data wait")]
    assert len(waits) == 2 and all(0 < row["ours"] < 1 for row in waits)  # in the main process, in 2 workers
    (step_wait,) = [row for row in run["rows"] if row["name"] == "step's wait for the CPU"]
    assert (
        step_wait["unit"] == "ms/step"
        and 0 <= step_wait["ours"]
        and "backgrounds drawn on the cpu" in step_wait["note"]
    )
    assert [row["target"] for row in waits if row["met"] is not None] == ["< 10%"]  # the default settings' row
    quality = [row for row in run["rows"] if row["name"].startswith("IoU ")]
    peers = {row["name"].split(": ")[1] for row in quality}
    assert peers == {"plain settings", "pix2pix b1", "pix2pix b16"}
    assert all(
        isinstance(row["met"], bool) and row["target"] == ">= 5x" for row in quality if "0.70: pix2pix" in row["name"]
    )
    assert set(run["details"]["time_to_quality"]) == {"ours"} | peers
    assert {"total", "decode", "network", "png encode (level 1)"} <= set(run["details"]["inference_split_s"]["256x192"])
    onnx = [row for row in run["rows"] if row["name"].startswith("onnxruntime ")]  # beside torch, same sizes
    assert [row["name"] for row in onnx] == ["onnxruntime 128x96", "onnxruntime 256x192", "onnxruntime G at 32 px"]
    assert [row["unit"] for row in onnx] == ["s/MP", "s/MP", "ms"]
    assert all(not row["higher_is_better"] and "torch" in row["note"] for row in onnx)


def test_quick_bench_prints_a_table_of_every_row(quick_bench):
    printed, result = quick_bench
    lines = printed.splitlines()
    assert lines[0].startswith("cpu: ") and "profile quick" in lines[0]
    assert lines[1].split()[:6] == ["measure", "unit", "ours", "plain", "ratio", "target"]
    for row in result["runs"][0]["rows"]:
        assert any(line.startswith(row["name"]) for line in lines), row["name"]
    assert any(line.startswith("inference 256x192, seconds: total") for line in lines)
    assert (
        printed.rstrip().splitlines()[-1].startswith("the bench's own time: ")
    )  # what each section cost, as docs/performance.md quotes it
    assert list(result["runs"][0]["details"]["section_s"]) == ["data", "step", "inference", "quality"]


def test_pix2pix_recipe_has_the_papers_networks_at_64_px():
    from torch import nn

    from bgremove_utils.bench.pix2pix import Pix2PixD, Pix2PixG

    g, d = Pix2PixG(64), Pix2PixD()
    assert len(g.down) == 6 and g.down[-1][0].out_channels == 512  # 64 px halved to 1, 64 channels doubling to 512
    dropouts = [any(isinstance(m, nn.Dropout) for m in block) for block in g.up]
    assert dropouts == [True, True, True, False, False]  # the first three decoder blocks
    photo = torch.rand(2, 3, 64, 64)
    rgba = g.predict(photo)
    assert rgba.shape == (2, 4, 64, 64) and 0 <= rgba.min() and rgba.max() <= 1
    assert d(photo, rgba).shape == (2, 1, 6, 6)  # 70x70 patches: one logit each, on 64 px
    x = torch.zeros(1, 7, 128, 128, requires_grad=True)  # one logit, away from the borders, sees 70x70 pixels
    d.eval()(x[:, :3], x[:, 3:])[0, 0, 7, 7].backward()
    rows, cols = x.grad.abs().sum((0, 1)).nonzero().unbind(1)
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_pix2pix_recipe_learns_and_stops_when_its_time_is_up(tiny_loaders):
    from bgremove_utils.bench.pix2pix import train_pix2pix

    history = train_pix2pix(tiny_loaders, batch_size=4, seconds=3.0)
    assert history and sum(row["seconds"] - row["val_seconds"] for row in history) < 3.0 + 2.0
    assert all(0 <= row["val_iou"] <= 1 for row in history) and history[-1]["loss_g"] > 0
