"""Cutting out pictures with a trained generator: RGBA PNGs at the photo's own resolution."""
