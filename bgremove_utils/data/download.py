"""Download the course's Kaggle data set with the `kaggle` package's own API.

Each failure (no or refused credentials, no network, partial download) becomes one KaggleError saying what to do.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import KaggleError
from ..paths import default_kaggle_dir

if TYPE_CHECKING:
    from kaggle.api.kaggle_api_extended import KaggleApi

DATASET = "cooperbuch/images-with-no-background-for-background-removal"
MARKER = ".complete"
_SECRETS = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY")
_OFFLINE = "The course's offline sample needs no Kaggle: python -m bgremove_utils make-sample"
_HOW_TO_LOG_IN = (
    "Create a token at https://www.kaggle.com/settings (API > Generate New Token), then either put it in the "
    "environment variable KAGGLE_API_TOKEN or in the file ~/.kaggle/access_token; the legacy ~/.kaggle/kaggle.json "
    "or KAGGLE_USERNAME + KAGGLE_KEY also work. In Colab, add KAGGLE_API_TOKEN (or KAGGLE_USERNAME and KAGGLE_KEY) "
    "to the Colab secrets (key icon on the left) and give this notebook access."
)


def _load_colab_secrets() -> None:
    """In Colab, copy the Kaggle secrets into os.environ unless already set there."""
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except ImportError:
        return
    for name in _SECRETS:
        if os.environ.get(name):
            continue
        value = None
        with contextlib.suppress(Exception):  # Colab raises SecretNotFoundError / NotebookAccessError
            value = userdata.get(name)
        if value:
            os.environ[name] = value


def _authenticated_api() -> KaggleApi:
    """Import kaggle and log in, silencing its log-in help text; raises KaggleError when that fails."""
    try:
        import requests

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            from kaggle.api.kaggle_api_extended import KaggleApi  # `import kaggle` itself tries to log in

            api = KaggleApi()
            api.authenticate()  # prints help and calls exit(1) when no usable credentials are found
    except ImportError as exc:
        raise KaggleError(f"The kaggle package is missing ({exc}): pip install kaggle. {_OFFLINE}") from None
    except requests.exceptions.RequestException as exc:
        raise _translate(exc, started=False, dataset="") from None
    except (SystemExit, OSError):  # kaggle 2.x exits, also for a rejected token; kaggle 1.x raises OSError
        token = os.environ.get("KAGGLE_API_TOKEN") or Path("~/.kaggle/access_token").expanduser().is_file()
        what = "Kaggle refused the API token." if token else "No Kaggle credentials found."
        raise KaggleError(f"{what} {_HOW_TO_LOG_IN} {_OFFLINE}") from None
    return api


def _translate(exc: BaseException, started: bool, dataset: str) -> KaggleError:
    """One KaggleError for an exception raised while logging in or downloading."""
    import requests

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return KaggleError(f"Kaggle refused the credentials (HTTP {status}). {_HOW_TO_LOG_IN}")
    if status == 404:
        return KaggleError(f"Kaggle found no data set {dataset!r} (HTTP 404): check its name.")
    if not started and isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return KaggleError(
            f"No network reached Kaggle ({type(exc).__name__}): check the internet connection or the proxy "
            f"(HTTPS_PROXY). {_OFFLINE}"
        )
    if not started and isinstance(exc, requests.exceptions.RequestException):
        return KaggleError(f"Kaggle answered with an error ({exc}); try again later. {_OFFLINE}")
    return KaggleError(
        f"The Kaggle download was incomplete ({type(exc).__name__}: {exc}). Run `python -m bgremove_utils download` "
        f"again: it starts from scratch. {_OFFLINE}"
    )


def download_kaggle(dest: str | os.PathLike | None = None, dataset: str = DATASET, force: bool = False) -> Path:
    """Download and unzip `dataset` into `dest` (default data/kaggle) and return that folder.

    A folder holding the `.complete` marker is returned at once, without network, unless force=True.
    The data goes first to a hidden folder beside `dest`, renamed into place only once fully unzipped.
    """
    dest = Path(dest).expanduser().absolute() if dest is not None else default_kaggle_dir()
    if (dest / MARKER).is_file() and not force:
        return dest
    if dest.exists() and not (dest / MARKER).is_file() and (not dest.is_dir() or any(dest.iterdir())):
        raise KaggleError(f"{dest} holds files that are not a finished Kaggle download: empty it or pick another dest.")
    _load_colab_secrets()
    api = _authenticated_api()
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)  # left over by a killed run: start from scratch
    tmp.mkdir(parents=True)
    try:
        try:
            api.dataset_download_files(dataset, path=str(tmp), unzip=True, quiet=False)  # progress bar on stderr
        except Exception as exc:
            raise _translate(exc, started=any(tmp.iterdir()), dataset=dataset) from None
        if not any(p.suffix != ".zip" for p in tmp.iterdir()):
            raise KaggleError(f"The Kaggle download of {dataset} left no files. Run it again. {_OFFLINE}")
        (tmp / MARKER).write_text(f"{dataset}\n")
        old = dest.with_name(f".{dest.name}.old")
        if dest.exists():
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
