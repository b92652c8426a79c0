"""The benchmark behind `python -m bgremove_utils bench`: data pipeline, training step, inference and
time to quality, each beside a plain baseline measured in the same run, with the ratio.
"""

from .runner import format_table, main, run

__all__ = ["format_table", "main", "run"]
