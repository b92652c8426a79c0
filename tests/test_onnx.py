"""The generator exported to ONNX and run by onnxruntime: the export's command writes it, the same
export path cuts out photos with it as with torch (within one level of 8 bits on the shipped real
photographs), any batch and picture size the U-Net takes works, and a damaged or foreign file, or
a missing extra, is one clear error.
"""

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bgremove_utils.cli import main
from bgremove_utils.data.course import shipped_photos
from bgremove_utils.errors import CheckpointError
from bgremove_utils.export.inference import process_and_generate
from bgremove_utils.models.checkpoint import load_generator, save_checkpoint
from bgremove_utils.models.networks import GModel
from bgremove_utils.settings import make_config

pytest.importorskip("onnxruntime", reason='the app extra: pip install -e ".[app]"')
pytestmark = pytest.mark.usefixtures("one_thread")

ALPHA_LEVELS = 1  # the exported alpha of onnxruntime and torch differ by at most one level of 255
ALPHA_SHARE = 0.002  # in at most 0.2% of the pixels (measured: under 0.05% on each shipped photo)
NETWORK_TOLERANCE = 1e-4  # G's own output, float32, either runtime


def _cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, its ONNX file): an untrained G of the `cpu` profile's shape, whose soft matte
    everywhere is the hardest case for agreement, exported by the command line."""
    folder = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    config = make_config("cpu")
    checkpoint = save_checkpoint(
        {"generator": GModel(config.g).state_dict(), "config": config.to_dict()}, folder / "g.pt"
    )
    code, out, err = _cli("export-onnx", "--checkpoint", checkpoint, folder / "g.onnx")
    assert code == 0, err
    assert out.startswith(f"wrote {folder / 'g.onnx'}") and "--checkpoint" in out
    return checkpoint, folder / "g.onnx"


def _one_per_video(n: int) -> list[Path]:
    firsts = {}
    for path in shipped_photos():
        firsts.setdefault(path.stem.rsplit("_", 1)[0], path)
    return list(firsts.values())[:n]


def test_onnx_cut_outs_match_torchs_on_the_shipped_real_photographs(exported, tmp_path):
    checkpoint, onnx_file = exported
    photos = _one_per_video(4)
    assert len(photos) == 4
    for photo in photos:
        with_torch = np.asarray(Image.open(process_and_generate(photo, tmp_path / "torch.png", checkpoint)), np.int16)
        with_onnx = np.asarray(Image.open(process_and_generate(photo, tmp_path / "onnx.png", onnx_file)), np.int16)
        assert with_onnx.shape == with_torch.shape == (*Image.open(photo).size[::-1], 4)
        differ = np.abs(with_onnx - with_torch)
        assert differ[..., 3].max() <= ALPHA_LEVELS, photo.name
        assert (differ[..., 3] > 0).mean() <= ALPHA_SHARE, photo.name
        # The colours as any background shows them (weighted by alpha): where the two alphas round to 0 and
        # 1 of 255, one pixel keeps the photo's colour and the other gets its un-blended one, invisible at 1/255.
        shown_torch, shown_onnx = (x[..., :3] * (x[..., 3:] / 255) for x in (with_torch, with_onnx))  # float
        assert np.abs(shown_onnx - shown_torch).max() <= ALPHA_LEVELS, photo.name


def test_onnx_model_takes_any_batch_and_sides_that_are_multiples_of_2_to_the_depth(exported):
    from bgremove_utils.export.onnx import OnnxGenerator

    checkpoint, onnx_file = exported
    torch_g, onnx_g = load_generator(checkpoint), OnnxGenerator(onnx_file)
    assert onnx_g.config == torch_g.config
    step = 2**torch_g.config.depth  # 16; at step x step the bottleneck is one pixel, which instance norm refuses
    for shape in [(1, 3, 64, 64), (3, 3, 2 * step, 5 * step), (2, 3, step, 2 * step)]:
        x = torch.rand(shape)
        assert (onnx_g.predict(x) - torch_g.predict(x)).abs().max() < NETWORK_TOLERANCE, shape
    with pytest.raises(ValueError, match=f"divisible by {step}"):
        onnx_g(torch.rand(1, 3, 40, 64))  # the same message as torch's GModel, not onnxruntime's


def test_a_damaged_onnx_file_is_one_error_naming_it_and_what_to_do(exported, tmp_path):
    from bgremove_utils.export.onnx import OnnxGenerator

    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(exported[1].read_bytes()[:5000])  # a download cut short
    with pytest.raises(CheckpointError, match=r"damaged.onnx: not a readable ONNX model.*export it again"):
        OnnxGenerator(damaged)
    photo = shipped_photos()[0]
    code, out, err = _cli("predict", photo, tmp_path / "out.png", "--checkpoint", damaged)
    assert code == 2 and not out and err.count("\n") == 1 and err.startswith(f"error: {damaged}: not a readable")
    assert not (tmp_path / "out.png").exists()
    with pytest.raises(CheckpointError, match="no ONNX model there; export one first"):
        OnnxGenerator(tmp_path / "missing.onnx")


def test_an_onnx_model_of_another_program_is_refused_by_name(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from bgremove_utils.export.onnx import OnnxGenerator

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 64, 64])],
    )
    foreign = tmp_path / "u2net.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), foreign)
    with pytest.raises(CheckpointError, match=r"u2net.onnx: an ONNX model, but not a generator exported by"):
        OnnxGenerator(foreign)


def test_export_onnx_refuses_a_name_that_is_not_onnx_and_keeps_the_checkpoint(exported):
    checkpoint = exported[0]
    before = checkpoint.read_bytes()
    code, _, err = _cli("export-onnx", "--checkpoint", checkpoint, checkpoint)
    assert code == 2 and "ends in .onnx" in err and err.count("\n") == 1
    assert checkpoint.read_bytes() == before


BLOCK_EXTRA = """
import sys
for name in ("gradio", "onnx", "onnxruntime", "onnxscript"):  # as if the app extra were not installed
    sys.modules[name] = None  # import raises ImportError; find_spec says it is not there
from bgremove_utils.cli import main
for command in COMMANDS:
    print("exit", main(command), flush=True)
"""


def test_without_the_app_extra_the_course_works_and_its_commands_say_how_to_install_it(exported, tmp_path):
    checkpoint, onnx_file = exported
    photo = shipped_photos()[0]
    commands = [
        ["predict", str(photo), str(tmp_path / "cut.png"), "--checkpoint", str(checkpoint)],
        ["export-onnx", "--checkpoint", str(checkpoint), str(tmp_path / "g.onnx")],
        ["app", "--checkpoint", str(checkpoint)],
        ["predict", str(photo), str(tmp_path / "cut2.png"), "--checkpoint", str(onnx_file)],
    ]
    script = BLOCK_EXTRA.replace("COMMANDS", repr(commands))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.count("exit 0") == 1 and result.stdout.count("exit 2") == 3, result.stdout + result.stderr
    assert (tmp_path / "cut.png").is_file() and not (tmp_path / "g.onnx").exists()
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") and 'pip install -e ".[app]"' in line for line in errors)
    assert [name for line in errors for name in ("onnxscript", "gradio", "onnxruntime") if name in line] == [
        "onnxscript",
        "gradio",
        "onnxruntime",
    ]
