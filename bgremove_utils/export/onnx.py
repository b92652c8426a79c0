"""The generator as an ONNX file, which programs other than this package can run (onnxruntime, as
rembg runs its models): `export_onnx` writes G alone; `OnnxGenerator` runs such a file with
onnxruntime, with GModel's `config` and `predict`, so that the export runs it unchanged.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from ..errors import CheckpointError, ExtraError, OutputError
from ..files import atomic_write, write_problem
from ..models.checkpoint import load_generator
from ..models.networks import GModel, check_side, mirror_mean
from ..settings import GConfig

OPSET = 18  # the ONNX operator set written: onnxruntime 1.14 and later run it
INPUT, OUTPUT = "photo", "rgba"  # (B, 3, H, W) in [0, 1] -> (B, 4, H, W) in [0, 1], RGB then alpha
CONFIG_KEY = "bgremove_utils.generator"  # the metadata entry that holds G's settings (GConfig) as JSON
INSTALL_EXTRA = 'pip install -e ".[app]"'
EXPORT_COMMAND = "python -m bgremove_utils export-onnx --checkpoint checkpoints/best.pt"


def import_extra(name: str, purpose: str) -> ModuleType:
    """Import a package of the course's optional `app` extra, or raise one ExtraError that says
    the command that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ExtraError(
            f"{purpose} needs the package {name}: install the course's app extra with {INSTALL_EXTRA} "
            "in the course's folder."
        ) from None


def export_onnx(generator: GModel | str | os.PathLike | None, path: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write G alone as an ONNX file at `path` (atomically) from a GModel or a checkpoint (None:
    checkpoints/best.pt); returns the path. Input `photo` (B, 3, H, W) in [0, 1], output `rgba`
    (B, 4, H, W) in [0, 1]: B, H and W are free, H and W multiples of 2**depth (16 for the `cpu`
    and `quick` profiles, 64 for `full`), not both equal to it. G's settings go into the file's
    metadata, for `OnnxGenerator`."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise OutputError(f"{path}: an ONNX model's name ends in .onnx; use e.g. {path.with_suffix('.onnx').name}.")
    import_extra("onnxscript", "The ONNX export")  # torch's exporter writes the graph with it (and onnx)
    model = generator if isinstance(generator, GModel) else load_generator(generator)
    model = copy.deepcopy(model).float().cpu().eval()  # the caller's model stays where it is
    config, Dim = model.config, torch.export.Dim
    step = 2**config.depth
    sizes = {"x": {0: Dim("batch"), 2: step * Dim("height_blocks"), 3: step * Dim("width_blocks")}}
    example = torch.rand(2, 3, config.image_size, config.image_size)  # a batch of 1 would fix the batch at 1
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=[INPUT],
            output_names=[OUTPUT],
            opset_version=opset,
            dynamic_shapes=sizes,
            external_data=False,
            verbose=False,
        )
    program.model.metadata_props[CONFIG_KEY] = json.dumps(asdict(config))
    data = program.model_proto.SerializeToString()
    try:
        with atomic_write(path) as handle:
            handle.write(data)
    except OSError as exc:
        problem = write_problem(exc, path, len(data))
        if problem is None:
            raise
        raise OutputError(f"cannot write {path}: {problem}") from None
    return path


class OnnxGenerator:
    """A generator written by `export_onnx`, run by onnxruntime on the CPU, with torch's number of
    threads. It has GModel's `config` and `predict` (the mirror averaging included), so
    `process_and_generate`, `cut_out` and `process_folder` take it, or its path, for a GModel."""

    device = torch.device("cpu")

    def __init__(self, path: str | os.PathLike):
        ort = import_extra("onnxruntime", "Running an ONNX model")
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: no ONNX model there; export one first: {EXPORT_COMMAND} {self.path}")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: the file's problems are said below, in one line
        options.intra_op_num_threads = torch.get_num_threads()  # as torch: the two runtimes compare fairly
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's InvalidProtobuf, Fail, InvalidGraph...
            why = (str(exc).splitlines() or [""])[0][:150]
            raise CheckpointError(
                f"{self.path}: not a readable ONNX model, damaged or not ONNX at all ({why}); "
                f"export it again: {EXPORT_COMMAND} {self.path}"
            ) from None
        names = [i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()]
        try:
            self.config = GConfig(**json.loads(self.session.get_modelmeta().custom_metadata_map[CONFIG_KEY]))
        except (KeyError, TypeError, ValueError):
            self.config = None
        if self.config is None or names != ([INPUT], [OUTPUT]):
            raise CheckpointError(
                f"{self.path}: an ONNX model, but not a generator exported by this course (inputs {names[0]}, "
                f"outputs {names[1]}, no {CONFIG_KEY} in its metadata); export one: {EXPORT_COMMAND} OUT.onnx"
            )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """RGBA (B, 4, H, W) in [0, 1] of photos (B, 3, H, W) in [0, 1], as GModel's forward."""
        check_side(x.shape, self.config.depth)
        photos = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        (rgba,) = self.session.run([OUTPUT], {INPUT: photos})
        return torch.from_numpy(rgba).to(x.device)

    def predict(self, x: torch.Tensor, mirror: bool = True) -> torch.Tensor:
        """As GModel.predict: with `mirror`, the mean of each picture's answer and its mirror image's."""
        return mirror_mean(self, x) if mirror else self(x)

    def __repr__(self) -> str:
        return f"OnnxGenerator({str(self.path)!r}, {self.config})"
