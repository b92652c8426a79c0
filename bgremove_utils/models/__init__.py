"""The two networks, GModel (a U-Net) and DModel (a residual PatchGAN), what to look at inside them,
and their checkpoint files."""

from .inspect import count_parameters, patch_window, receptive_field, trace_shapes
from .networks import DModel, Down, GModel, ResBlock, Up

__all__ = [
    "DModel",
    "Down",
    "GModel",
    "ResBlock",
    "Up",
    "count_parameters",
    "patch_window",
    "receptive_field",
    "trace_shapes",
]
