"""`download real`, tested against a server on 127.0.0.1 that serves small files in the sources' own
layouts (EG1800's .mat masks, CCP's .mat label maps, Weizmann's JPEG masks at another size, DAVIS's
PNG masks), never the internet; and the shipped folders checked against their manifests."""

import csv
import hashlib
import io
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from bgremove_utils.cli import main
from bgremove_utils.data.pairs import find_pairs
from bgremove_utils.data.real_download import CATALOGUE, REAL_FOLDERS, download_real, read_catalogue
from bgremove_utils.errors import DownloadError
from bgremove_utils.paths import project_root

FIELDS = ["stem", "width", "height", "source", "sequence", "repo", "commit", "orig_path", "mask_path"]
FIELDS += ["terms", "shipped", "input_sha256", "target_sha256"]


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def _object(width: int, height: int) -> np.ndarray:
    """A mask (H, W) of an ellipse in the middle: True is the object."""
    y, x = np.mgrid[:height, :width]
    return ((x - width / 2) / (width / 3)) ** 2 + ((y - height / 2) / (height / 3)) ** 2 < 1


def _photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    pixels[_object(width, height)] += np.array([150, 100, 20], np.uint8)
    return Image.fromarray(pixels)


def _mat(name: str, labels: np.ndarray) -> bytes:
    out = io.BytesIO()
    scipy.io.savemat(out, {name: labels})
    return out.getvalue()


# Each source: its stem, the repository's paths, the photo's size there and in the course, and its mask file.
SOURCES = {
    "portrait": ("portrait_00007", "data/images_data_crop/00007.jpg", "data/images_mask/00007_mask.mat"),
    "ccp": ("ccp_0042", "photos/0042.jpg", "annotations/pixel-level/0042.mat"),
    "horse": ("horse_007", "weizmann_horse_db/rgb/horse007.jpg", "weizmann_horse_db/figure_ground/horse007.jpg"),
    "davis": ("davis_cows_00012", "DAVIS/JPEGImages/480p/cows/00012.jpg", "DAVIS/Annotations/480p/cows/00012.png"),
}


def _source_files(source: str, seed: int) -> tuple[bytes, bytes]:
    """A photo and its mask as the source repository stores them."""
    if source == "portrait":  # 60x80 crops; the mask a 0/1 uint8 matrix in a .mat file
        return _jpeg(_photo(60, 80, seed)), _mat("mask", _object(60, 80).astype(np.uint8))
    if source == "ccp":  # a label map: 0 is background, garments and skin other labels
        labels = _object(55, 84).astype(np.uint8) * 3
        labels[:10][_object(55, 84)[:10]] = 41
        return _jpeg(_photo(55, 84, seed)), _mat("groundtruth", labels)
    if source == "horse":  # a larger photo than its JPEG mask, same framing
        mask = Image.fromarray(_object(40, 28).astype(np.uint8) * 255)
        return _jpeg(_photo(80, 56, seed)), _jpeg(mask.convert("RGB"))
    png = io.BytesIO()
    Image.fromarray(_object(85, 48).astype(np.uint8) * 255).save(png, "PNG")
    return _jpeg(_photo(85, 48, seed)), png.getvalue()


def _expected(source: str, photo: bytes, mask: bytes, size: tuple[int, int]) -> tuple[bytes, bytes]:
    """The course's layout, made here independently: RGB JPEG 90 at `size`, 0/255 grey PNG."""
    image = Image.open(io.BytesIO(photo)).convert("RGB").resize(size, Image.LANCZOS)
    if source in ("portrait", "ccp"):
        binary = scipy.io.loadmat(io.BytesIO(mask))["mask" if source == "portrait" else "groundtruth"] > 0
    else:
        binary = np.asarray(Image.open(io.BytesIO(mask)).convert("L")) >= 128
    matte = Image.fromarray(binary.astype(np.uint8) * 255, "L").resize(size, Image.BILINEAR)
    jpeg, png = io.BytesIO(), io.BytesIO()
    image.save(jpeg, "JPEG", quality=90)
    matte.save(png, "PNG")
    return jpeg.getvalue(), png.getvalue()


class Server:
    """Files under `root` served on 127.0.0.1 as repo/commit/path; each path asked for is counted, and
    `broken` paths are cut short (the connection closed after 50 bytes) for their first
    `broken[path]` requests."""

    def __init__(self, root: Path):
        self.root, self.asked, self.broken = root, [], {}
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                path = self.path.lstrip("/")
                server.asked.append(path)
                if server.broken.get(path, 0) > 0:
                    server.broken[path] -= 1
                    data = (server.root / path).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:50])
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{{repo}}/{{commit}}/{{path}}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def sources(tmp_path):
    """A server of two pairs of each source, and a data folder whose three real folders' manifests
    list them with the checksums of the built files: (server, data folder, {stem: expected files})."""
    served, data = tmp_path / "served", tmp_path / "data"
    rows, expected = {name: [] for name in REAL_FOLDERS}, {}
    for seed, (source, (stem, photo_path, mask_path)) in enumerate(2 * list(SOURCES.items())):
        stem = f"{stem}{seed}"
        photo, mask = _source_files(source, seed)
        repo, commit = f"owner/{source}-repo", f"{seed:040d}"
        for path, content in ((photo_path, photo), (mask_path, mask)):
            (served / repo / commit / path).parent.mkdir(parents=True, exist_ok=True)
            (served / repo / commit / path).write_bytes(content)
        width, height = Image.open(io.BytesIO(photo)).size
        size = (width // 2, height // 2)
        expected[stem] = _expected(source, photo, mask, size)
        folder = "real-objects" if source == "davis" else "real-val" if seed >= 4 else "real-train"
        sums = [hashlib.sha256(content).hexdigest() for content in expected[stem]]
        values = [stem, *size, source, "", repo, commit, photo_path, mask_path, "", "no", *sums]
        rows[folder].append(dict(zip(FIELDS, map(str, values))))
    for name, found in rows.items():
        (data / name).mkdir(parents=True)
        with open(data / name / CATALOGUE, "w", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            writer.writerows(found)
    return Server(served), data, expected


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_download_real_fetches_builds_and_checks_every_pair_in_the_courses_layout(sources, capsys):
    server, data, expected = sources
    result = download_real(data, url=server.url, progress=False)
    assert sum(result.fetched.values()) == 8 and result.failed == [] and result.in_place == 0
    assert result.fetched == {"portrait": 2, "ccp": 2, "horse": 2, "davis": 2}
    for name in REAL_FOLDERS:
        pairs, orphans = find_pairs(data / name)  # the layout training and evaluate read
        assert orphans == [] and len(pairs) == len(read_catalogue(data / name))
        for photo, mask in pairs:
            assert (photo.read_bytes(), mask.read_bytes()) == expected[photo.stem]
            with Image.open(mask) as matte:
                assert matte.mode == "L" and matte.size == Image.open(photo).size
    summary = result.summary()
    assert "Fetched and checked 8 pairs (2 ccp, 2 davis, 2 horse, 2 portrait)" in summary
    assert str(data / "real-train") in summary


def test_a_second_run_fetches_nothing_and_a_damaged_file_is_fetched_again(sources):
    server, data, expected = sources
    download_real(data, url=server.url, progress=False)
    server.asked.clear()
    assert download_real(data, url=server.url, progress=False).in_place == 8 and server.asked == []
    damaged = data / "real-train" / "targets" / "ccp_00421.png"
    damaged.write_bytes(damaged.read_bytes()[:-20])
    result = download_real(data, url=server.url, progress=False)
    assert result.fetched == {"ccp": 1} and result.in_place == 7
    assert damaged.read_bytes() == expected["ccp_00421"][1]
    assert sorted(Path(path).name for path in server.asked) == ["0042.jpg", "0042.jpg", "0042.mat"]


def test_a_file_damaged_on_the_way_is_fetched_again_and_one_that_stays_wrong_is_refused(sources):
    server, data, expected = sources
    rows = read_catalogue(data / "real-objects")
    flaky, wrong = rows[0], rows[1]
    server.broken[f"{flaky['repo']}/{flaky['commit']}/{flaky['mask_path']}"] = 1  # truncated once
    server.broken[f"{wrong['repo']}/{wrong['commit']}/{wrong['orig_path']}"] = 99  # never right
    result = download_real(data, url=server.url, progress=False)
    assert (data / "real-objects" / "targets" / f"{flaky['stem']}.png").read_bytes() == expected[flaky["stem"]][1]
    assert [stem for stem, _ in result.failed] == [wrong["stem"]]
    assert not (data / "real-objects" / "inputs" / f"{wrong['stem']}.jpg").exists()  # nothing unchecked is kept
    assert "Run the same command again" in result.summary()


def test_an_interrupted_download_resumes_with_what_is_left(sources):
    server, data, _ = sources
    for row in read_catalogue(data / "real-val"):  # the network gone after the first pairs: these fail
        server.broken[f"{row['repo']}/{row['commit']}/{row['orig_path']}"] = 2
    first = download_real(data, url=server.url, progress=False)
    assert len(first.failed) == 3 and sum(first.fetched.values()) == 5
    assert "the transfer was cut short" in first.failed[0][1]
    server.asked.clear()
    second = download_real(data, url=server.url, progress=False)
    assert second.in_place == 5 and sum(second.fetched.values()) == 3 and second.failed == []
    assert len(server.asked) == 1 + 2 * 3  # the first file to see the network is there, then the 3 pairs left


def test_with_no_network_download_real_says_so_in_one_line_and_changes_nothing(sources, capsys):
    _, data, _ = sources
    before = _files(data)
    with pytest.raises(DownloadError, match=r"no download: cannot reach 127\.0\.0\.1:9 .*nothing was changed"):
        download_real(data, url="http://127.0.0.1:9/{repo}/{commit}/{path}", progress=False)
    assert _files(data) == before


def test_cli_download_real_names_the_terms_and_where_it_put_them(sources, capsys):
    server, data, _ = sources
    assert main(["download", "real", "--dest", str(data), "--url", server.url]) == 0
    out = capsys.readouterr().out
    assert "for learning and teaching; do not pass them on" in out and "Fetched and checked 8 pairs" in out
    assert main(["download", "real", "--dest", str(data / "nowhere"), "--url", server.url]) == 2
    assert "manifest.csv: cannot read the list of pairs" in capsys.readouterr().err


def _committed(folder: Path) -> list[Path] | None:
    """The files of `folder` that git tracks (None where there is no git checkout)."""
    try:
        found = subprocess.run(["git", "ls-files"], cwd=folder, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return [Path(line) for line in found.stdout.splitlines()]


@pytest.mark.parametrize("name", REAL_FOLDERS)
def test_every_shipped_real_file_matches_its_manifest_and_only_cc_by_files_are_committed(name):
    folder = project_root() / "data" / name
    rows = read_catalogue(folder)
    assert len({row["stem"] for row in rows}) == len(rows) > 0 and (folder / "SOURCE.md").is_file()
    for row in (row for row in rows if row["shipped"] == "yes"):
        assert row["terms"] == "CC BY 4.0"
        for sub, ext, key in (("inputs", "jpg", "input_sha256"), ("targets", "png", "target_sha256")):
            assert hashlib.sha256((folder / sub / f"{row['stem']}.{ext}").read_bytes()).hexdigest() == row[key]
    committed = _committed(folder)
    if committed is not None:  # no photograph is committed that the manifest does not say may be passed on
        shipped = {row["stem"] for row in rows if row["shipped"] == "yes"}
        pictures = {path.stem for path in committed if path.suffix in (".jpg", ".png")}
        assert pictures == shipped


def test_the_shipped_video_frames_are_pairs_the_course_reads():
    pairs, orphans = find_pairs(project_root() / "data" / "real-objects")
    assert len(pairs) == 477 and orphans == []
