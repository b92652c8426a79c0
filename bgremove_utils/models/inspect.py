"""Looking inside a network: its parameter count, how far each output sees (receptive field), and
which input pixels one output value sees (its window), and the shape after each block, as
notebook 2 shows them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrize import type_before_parametrizations


def receptive_field(model: nn.Module) -> int:
    """How many input pixels across each output value sees through the model's convolutions, in
    the order they run (instance norm's statistics, which see the whole picture, aside)."""
    field, step = 1, 1
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
        field += (conv.kernel_size[0] - 1) * conv.dilation[0] * step
        step *= conv.stride[0]
    return field


def patch_window(model: nn.Module, index: int) -> tuple[int, int]:
    """The first and last input pixel (along one axis) that output number `index` of the model's
    convolutions sees, in the order they run: the window of one patch verdict of a PatchGAN. It may
    reach beyond the picture (below 0, or past its last pixel): there it sees zero padding. For a
    ResBlock the longer path (through its two convolutions) counts, as in `receptive_field`."""
    first, step = 0, 1
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
        first -= conv.padding[0] * step
        step *= conv.stride[0]
    return first + index * step, first + index * step + receptive_field(model) - 1


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def trace_shapes(model: nn.Module, *inputs: torch.Tensor) -> list[tuple[str, str, tuple[int, ...]]]:
    """Run `model` on `inputs` and return (name, block type, output shape) of each of its parts,
    in the order they ran. The parts are the model's children, with the items of a ModuleList
    (`downs.0`, `downs.1`, ...) and of a Sequential that is the model's only child (`net.0`, ...)."""
    children = list(model.named_children())
    parts = []
    for name, child in children:
        if isinstance(child, nn.ModuleList) or (isinstance(child, nn.Sequential) and len(children) == 1):
            parts += [(f"{name}.{i}", item) for i, item in child.named_children()]
        else:
            parts.append((name, child))
    shapes: list[tuple[str, str, tuple[int, ...]]] = []

    def record(name: str, part: nn.Module):
        kind = type_before_parametrizations(part).__name__  # Conv2d, not ParametrizedConv2d (spectral norm)
        return lambda module, _inputs, out: shapes.append((name, kind, tuple(out.shape)))

    hooks = [part.register_forward_hook(record(name, part)) for name, part in parts]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes
