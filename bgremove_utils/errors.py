"""The exceptions the package raises on purpose: each names the file or argument at fault and
says what to do, so that a learner never has to read a traceback from inside Pillow or torch.
"""


class BgRemoveError(Exception):
    """Base of every error this package raises on purpose."""


class ImageError(BgRemoveError, ValueError):
    """A file that is not a usable picture (empty, truncated, not an image, too large)."""


class OutputError(BgRemoveError, OSError):
    """An output that cannot or must not be written (it would replace an input, no space...)."""


class CheckpointError(BgRemoveError, RuntimeError):
    """A checkpoint that is missing, corrupt, made for another model configuration or by a run
    that diverged; or a checkpoint folder that cannot be written (full, read-only) or that
    another training run is using. An exported ONNX model that is missing, damaged or not a
    generator of this course is one too."""


class DataError(BgRemoveError, ValueError):
    """A data folder without usable pairs."""


class ConfigError(BgRemoveError, ValueError):
    """A training or model argument that cannot work; raised before any data is loaded."""


class DivergenceError(BgRemoveError, RuntimeError):
    """Training that diverged (losses not finite, or far past their first level): stopped before
    the diverged model replaces a checkpoint."""


class PeerError(BgRemoveError, RuntimeError):
    """Under torchrun, a collective failed: another process of the run stopped (its own error says
    why), so this one stops too."""


class KaggleError(BgRemoveError, RuntimeError):
    """The Kaggle download could not be done (credentials, network, partial download)."""


class DownloadError(BgRemoveError, RuntimeError):
    """The real photographs' download could not start (no network, a source that refuses)."""


class ExtraError(BgRemoveError, ImportError):
    """An optional part of the course (the ONNX export and its runtime, the web page) whose
    packages are not installed: the message says the one command that installs them."""
