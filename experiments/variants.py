"""Candidates for more quality per CPU minute that need code, tried before any is kept in the package:
each VARIANT changes the generator for the whole run (its training, and the scoring of its
checkpoint in the same process), then experiments/real_pairs.py trains and scores as usual.

    python experiments/variants.py g_batchnorm --name g_batchnorm --seeds 0 -- data_root=DIR

Settings that are already arguments (rates, widths, steps, warm-up) need no variant: give them to
real_pairs.py after `--`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import real_pairs  # experiments/, beside this script
from torch import nn

from bgremove_utils.models import networks


def _with_g_norm(make: Callable[[int], nn.Module]) -> None:
    """Build every GModel with `make(channels)` as its normalisation layer (D keeps instance norm)."""
    build = networks.GModel.__init__

    def init(self, *args, **kwargs):
        usual, networks.norm_layer = networks.norm_layer, make
        try:
            build(self, *args, **kwargs)
        finally:
            networks.norm_layer = usual

    networks.GModel.__init__ = init


VARIANTS: dict[str, Callable[[], None]] = {
    # Batch statistics instead of each picture's own: at batch 32 they are steady, and a picture's
    # brightness and contrast stay visible to the layers after (instance norm removes them).
    "g_batchnorm": lambda: _with_g_norm(nn.BatchNorm2d),
    # Group norm: per picture like instance norm, but over groups of 8 channels, so each layer keeps
    # how its channels differ in strength.
    "g_groupnorm": lambda: _with_g_norm(lambda channels: nn.GroupNorm(max(1, channels // 8), channels)),
}


def main() -> None:
    variant, rest = sys.argv[1], sys.argv[2:]
    if variant not in VARIANTS:
        sys.exit(f"variants.py: {variant!r} is not one of {sorted(VARIANTS)}")
    VARIANTS[variant]()
    sys.argv = [sys.argv[0], *rest]
    real_pairs.main()


if __name__ == "__main__":
    main()
