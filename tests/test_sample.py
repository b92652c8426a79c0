import hashlib
import json

from bgremove_utils.data.pairs import find_pairs, read_manifest
from bgremove_utils.data.sample import VERSION, make_sample
from bgremove_utils.evaluation.metrics import evaluate


def _digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_sample_is_deterministic_from_its_seed(tmp_path):
    a = make_sample(tmp_path / "a", n_pairs=12, size=64, seed=3)
    b = make_sample(tmp_path / "b", n_pairs=12, size=64, seed=3)
    c = make_sample(tmp_path / "c", n_pairs=12, size=64, seed=4)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_second_call_with_same_arguments_does_nothing(tmp_path):
    root = make_sample(tmp_path, n_pairs=10, size=64)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    make_sample(tmp_path, n_pairs=10, size=64)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == mtimes


def test_other_arguments_rebuild_the_sample(tmp_path):
    make_sample(tmp_path, n_pairs=10, size=64)
    make_sample(tmp_path, n_pairs=6, size=32)
    pairs, orphans = find_pairs(tmp_path)
    assert len(pairs) == 6 and not orphans
    expected = {"n_pairs": 6, "size": 32, "seed": 0, "photos": "train", "version": VERSION}
    assert read_manifest(tmp_path)["args"] == expected


def test_a_sample_drawn_by_an_older_version_is_rebuilt(tmp_path):
    make_sample(tmp_path, n_pairs=6, size=32)
    manifest = read_manifest(tmp_path)
    manifest["args"]["version"] = VERSION - 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "no_bg" / "sample_00000.png").write_bytes(b"old drawing")
    make_sample(tmp_path, n_pairs=6, size=32)
    assert read_manifest(tmp_path)["args"]["version"] == VERSION
    assert (tmp_path / "no_bg" / "sample_00000.png").read_bytes()[:4] == b"\x89PNG"


def test_layout_and_split_are_those_of_a_paired_data_set(sample_root):
    manifest = json.loads((sample_root / "manifest.json").read_text())
    split = manifest["split"]
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (480, 60, 60)
    train, val, test = (set(split[name]) for name in ("train", "val", "test"))
    assert not train & val and not train & test and not val & test and len(train | val | test) == 600
    suffixes = {name.rsplit(".", 1)[1] for name in manifest["inputs"]}
    assert suffixes == {"png", "jpg"}  # some photos are JPEGs
    pairs, orphans = find_pairs(sample_root / "with_bg", sample_root / "no_bg")
    assert len(pairs) == 600 and orphans == []


def test_sample_mattes_are_soft_and_varied(quick_loaders):
    alpha = quick_loaders.test.dataset.targets[:, 3].float() / 255
    soft = ((alpha > 0.05) & (alpha < 0.95)).float().mean()
    assert soft > 0.005  # anti-aliased and blurred edges
    coverage = alpha.flatten(1).mean(1)
    assert coverage.min() < 0.1 < 0.3 < coverage.max()  # small and large objects


def test_a_colour_threshold_does_not_solve_the_sample(quick_loaders):
    baseline = evaluate(None, quick_loaders.test)["baseline"]
    assert baseline["iou"] < 0.5
