"""download_kaggle without network or real credentials: every failure is one KaggleError saying what to do."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import types
import zipfile
from pathlib import Path

import pytest
import requests

from bgremove_utils.data.download import MARKER, download_kaggle
from bgremove_utils.errors import KaggleError

with contextlib.redirect_stdout(io.StringIO()):  # `import kaggle` prints its log-in help when there is no token
    from kaggle.api.kaggle_api_extended import KaggleApi


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No real Kaggle credentials can be found: KAGGLE_* cleared, HOME and the kaggle config in tmp_path."""
    for name in {n for n in os.environ if n.startswith("KAGGLE_")} | {
        "KAGGLE_API_TOKEN",
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
    }:
        monkeypatch.setenv(name, "")  # recorded, so that a value download_kaggle sets is undone too
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / ".kaggle"))
    # KaggleApi reads its config folder once, at import: point it to the empty one too
    monkeypatch.setattr(KaggleApi, "config_dir", str(home / ".kaggle"))
    monkeypatch.setattr(KaggleApi, "config", str(home / ".kaggle" / "kaggle.json"))
    monkeypatch.setattr(KaggleApi, "config_values", {})
    return home


@pytest.fixture
def legacy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Username and key that log in without network (the legacy way); the download itself is patched."""
    monkeypatch.setenv("KAGGLE_USERNAME", "learner")
    monkeypatch.setenv("KAGGLE_KEY", "0123456789abcdef")


def fake_download(monkeypatch: pytest.MonkeyPatch, body) -> None:
    monkeypatch.setattr(KaggleApi, "dataset_download_files", lambda self, dataset, path, **kw: body(Path(path)))


def http_error(status: int) -> requests.exceptions.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.exceptions.HTTPError(f"{status} Client Error", response=response)


def assert_not_complete(dest: Path) -> None:
    assert not (dest / MARKER).exists()
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if p.name.startswith(".")] == []  # no partial folder left


def test_no_credentials_says_how_to_log_in_without_system_exit(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(KaggleError) as info:
        download_kaggle(tmp_path / "kaggle")
    message = str(info.value)
    for hint in ("KAGGLE_API_TOKEN", "access_token", "kaggle.json", "KAGGLE_USERNAME", "Colab secrets", "make-sample"):
        assert hint in message
    assert "Authentication required" not in capsys.readouterr().out  # kaggle's own help text is silenced
    assert_not_complete(tmp_path / "kaggle")


def test_no_network_during_download_says_so(monkeypatch, legacy_credentials, tmp_path: Path) -> None:
    def offline(path: Path) -> None:
        raise requests.exceptions.ConnectionError("Failed to resolve 'api.kaggle.com'")

    fake_download(monkeypatch, offline)
    with pytest.raises(KaggleError, match="No network reached Kaggle") as info:
        download_kaggle(tmp_path / "kaggle")
    assert "make-sample" in str(info.value)
    assert_not_complete(tmp_path / "kaggle")


def test_no_network_while_checking_token_says_so(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_not_checked")

    def offline(self, token: str) -> None:
        raise requests.exceptions.ConnectionError("Failed to resolve 'api.kaggle.com'")

    monkeypatch.setattr(KaggleApi, "_introspect_token", offline)
    with pytest.raises(KaggleError, match="No network reached Kaggle"):
        download_kaggle(tmp_path / "kaggle")


@pytest.mark.parametrize("status", [401, 403])
def test_wrong_credentials_are_reported_as_refused(monkeypatch, legacy_credentials, tmp_path: Path, status) -> None:
    def refused(path: Path) -> None:
        raise http_error(status)

    fake_download(monkeypatch, refused)
    with pytest.raises(KaggleError, match="refused the credentials") as info:
        download_kaggle(tmp_path / "kaggle")
    assert "kaggle.com/settings" in str(info.value)
    assert_not_complete(tmp_path / "kaggle")


def test_rejected_token_is_reported_as_refused_not_missing(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_expired")
    monkeypatch.setattr(KaggleApi, "_introspect_token", lambda self, token: None)  # what Kaggle answers to a bad one
    with pytest.raises(KaggleError, match="refused the API token") as info:
        download_kaggle(tmp_path / "kaggle")
    assert "kaggle.com/settings" in str(info.value)


@pytest.mark.parametrize(("status", "says"), [(404, "no data set"), (500, "try again later")])
def test_other_http_errors_before_the_download_say_so(monkeypatch, legacy_credentials, tmp_path, status, says):
    def failing(path: Path) -> None:
        raise http_error(status)

    fake_download(monkeypatch, failing)
    with pytest.raises(KaggleError, match=says):
        download_kaggle(tmp_path / "kaggle")
    assert_not_complete(tmp_path / "kaggle")


@pytest.mark.parametrize(
    "error",
    [zipfile.BadZipFile("File is not a zip file"), requests.exceptions.ConnectionError("Connection reset by peer")],
    ids=["bad-zip", "interrupted"],
)
def test_partial_download_is_an_error_and_never_looks_complete(monkeypatch, legacy_credentials, tmp_path, error):
    def partial(path: Path) -> None:
        (path / "images-with-no-background-for-background-removal.zip").write_bytes(b"PK\x03\x04 truncated")
        raise error

    fake_download(monkeypatch, partial)
    with pytest.raises(KaggleError, match="incomplete") as info:
        download_kaggle(tmp_path / "kaggle")
    assert "python -m bgremove_utils download" in str(info.value)
    assert_not_complete(tmp_path / "kaggle")


def test_successful_download_is_marked_complete(monkeypatch, legacy_credentials, tmp_path: Path) -> None:
    fake_download(monkeypatch, lambda path: (path / "img.png").write_bytes(b"png"))
    dest = download_kaggle(tmp_path / "kaggle")
    assert dest == tmp_path / "kaggle"
    assert (dest / MARKER).is_file() and (dest / "img.png").read_bytes() == b"png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "kaggle"]  # temporary folder renamed into place


def test_existing_complete_download_is_returned_without_calling_kaggle(monkeypatch, tmp_path: Path) -> None:
    dest = tmp_path / "kaggle"
    dest.mkdir()
    (dest / MARKER).write_text("done\n")

    def must_not_run(*args, **kwargs) -> None:
        raise AssertionError("the Kaggle API was called")

    monkeypatch.setattr(KaggleApi, "authenticate", must_not_run)
    monkeypatch.setattr(KaggleApi, "dataset_download_files", must_not_run)
    assert download_kaggle(dest) == dest


def test_force_downloads_again_and_replaces_the_old_data(monkeypatch, legacy_credentials, tmp_path: Path) -> None:
    dest = tmp_path / "kaggle"
    dest.mkdir()
    (dest / MARKER).write_text("done\n")
    (dest / "old.png").write_bytes(b"old")
    fake_download(monkeypatch, lambda path: (path / "new.png").write_bytes(b"new"))
    assert download_kaggle(dest, force=True) == dest
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, "new.png"]


def test_folder_with_other_files_is_not_overwritten(monkeypatch, legacy_credentials, tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    fake_download(monkeypatch, lambda path: (path / "img.png").write_bytes(b"png"))
    with pytest.raises(KaggleError, match="not a finished Kaggle download"):
        download_kaggle(tmp_path, force=True)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_colab_secrets_are_used_when_not_in_the_environment(monkeypatch, tmp_path: Path) -> None:
    secrets = {"KAGGLE_USERNAME": "learner", "KAGGLE_KEY": "0123456789abcdef"}  # no KAGGLE_API_TOKEN secret

    def get(name: str) -> str:
        if name not in secrets:
            raise KeyError(f"Secret {name} does not exist.")  # Colab raises SecretNotFoundError
        return secrets[name]

    colab = types.ModuleType("google.colab")
    colab.userdata = types.SimpleNamespace(get=get)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    seen = {}
    fake_download(monkeypatch, lambda path: (seen.update(os.environ), (path / "a.png").write_bytes(b"")))
    assert (download_kaggle(tmp_path / "kaggle") / MARKER).is_file()
    assert seen["KAGGLE_USERNAME"] == "learner" and "KAGGLE_API_TOKEN" not in seen


@pytest.mark.parametrize("failure", ["no_credentials", "no_network", "partial_download"])
def test_sample_data_still_loads_after_a_kaggle_error(monkeypatch, tmp_path: Path, failure: str) -> None:
    from bgremove_utils.data.dataset import make_loaders
    from bgremove_utils.data.sample import make_sample

    if failure != "no_credentials":
        monkeypatch.setenv("KAGGLE_USERNAME", "learner")
        monkeypatch.setenv("KAGGLE_KEY", "0123456789abcdef")

        def fail(path: Path) -> None:
            if failure == "partial_download":
                (path / "part.zip").write_bytes(b"PK\x03\x04 truncated")
                raise zipfile.BadZipFile("File is not a zip file")
            raise requests.exceptions.ConnectionError("Failed to resolve 'api.kaggle.com'")

        fake_download(monkeypatch, fail)
    with pytest.raises(KaggleError, match="make-sample"):
        download_kaggle(tmp_path / "kaggle")
    loaders = make_loaders(make_sample(tmp_path / "sample", n_pairs=12, size=64), image_size=32, batch_size=4)
    assert [len(loader.dataset) for loader in loaders] == [len(loader.dataset.pairs) for loader in loaders]
    assert sum(len(loader.dataset) for loader in loaders) == 12
    assert next(iter(loaders.train))[0].shape == (4, 3, 32, 32)
