"""The benchmark's structure, from one `bench --quick` run: its rows, columns and JSON. The figures
are not checked (timed tests are not benchmarks): `python -m bgremove_utils bench` reports them.
"""

import contextlib
import io
import json
import tempfile

import pytest

from bgremove_utils.cli import main

SECTIONS = ["data pipeline", "train step (D + G)", "train step / fp32 ceiling", "inference ", "time to val IoU 0.95"]
COLUMNS = {"name", "unit", "ours", "plain", "ratio", "higher_is_better", "target", "met", "note"}


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory):
    """(printed table, JSON) of one quick run on the CPU; one thread keeps it short on a busy machine."""
    folder, printed, tempdir = tmp_path_factory.mktemp("bench"), io.StringIO(), tempfile.tempdir
    tempfile.tempdir = str(folder)  # its sample and outputs go under pytest's tmp_path too
    try:
        with contextlib.redirect_stdout(printed):
            assert (
                main(["bench", "--quick", "--device", "cpu", "--threads", "1", "--json", f"{folder}/bench.json"]) == 0
            )
    finally:
        tempfile.tempdir = tempdir
    return printed.getvalue(), json.loads((folder / "bench.json").read_text())


def test_quick_bench_writes_each_section_beside_its_baseline_with_the_ratio(quick_bench):
    _, result = quick_bench
    (run,) = result["runs"]
    assert run["meta"]["quick"] and run["meta"]["device"] == "cpu" and run["meta"]["profile"] == "quick"
    names = [row["name"] for row in run["rows"]]
    for section in SECTIONS:
        assert any(name.startswith(section) for name in names), section
    for row in run["rows"]:
        assert set(row) == COLUMNS
        if row["name"].startswith("time to"):
            continue  # one epoch of a tiny model may not reach the bar: "not reached" is a valid answer
        assert row["ours"] > 0 and row["plain"] > 0, row
        expected = row["ours"] / row["plain"] if row["higher_is_better"] else row["plain"] / row["ours"]
        assert row["ratio"] == pytest.approx(expected)  # > 1 always means ours is better
    assert {"total", "decode", "network", "png encode (level 1)"} <= set(run["details"]["inference_split_s"]["256x192"])


def test_quick_bench_prints_a_table_of_every_row(quick_bench):
    printed, result = quick_bench
    lines = printed.splitlines()
    assert lines[0].startswith("cpu: ") and "profile quick" in lines[0]
    assert lines[1].split()[:6] == ["measure", "unit", "ours", "plain", "ratio", "target"]
    for row in result["runs"][0]["rows"]:
        assert any(line.startswith(row["name"]) for line in lines), row["name"]
    assert any(line.startswith("inference 256x192, seconds: total") for line in lines)
