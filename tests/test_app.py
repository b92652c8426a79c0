"""The web page (`python -m bgremove_utils app`) as a person uses it, in headless Chromium: pick an
example, upload a real photograph, download its cut-out and find it pixel for pixel the PNG that
`process_and_generate` writes; choose a colour; upload a file that is not a picture and read the
message `predict` gives. The page runs in this process on 127.0.0.1 and asks nothing of any other
address. A screenshot of the page is left in the test's tmp_path (docs/images/app.png is one).
"""

import re
import socket
import urllib.request

import numpy as np
import pytest
from PIL import Image
from test_browser import _wait, browser, chromium  # noqa: F401  (the JupyterLab test's headless Chromium)

from bgremove_utils.course.app import background_rgb, views
from bgremove_utils.data.course import shipped_photos
from bgremove_utils.data.images import open_image
from bgremove_utils.errors import ImageError
from bgremove_utils.export.inference import process_and_generate
from bgremove_utils.settings import BEST_CHECKPOINT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(trained_run):
    """(address, checkpoint): the page of the session's tiny trained model, served from this process."""
    pytest.importorskip("gradio", reason='the app extra: pip install -e ".[app]"')
    from bgremove_utils.course.app import build_app, launch

    checkpoint = trained_run[0] / BEST_CHECKPOINT
    page = build_app(checkpoint)
    try:
        yield launch(page, port=_free_port(), block=False), checkpoint
    finally:
        page.close(verbose=False)


def _element(driver, selector: str):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0] if found else None


def _message(driver) -> str:
    return _element(driver, "#message").text


def _shown(driver, name: str) -> np.ndarray | None:
    """The picture the page shows in its `name` image (checker, pasted or mask), as served to it."""
    image = _element(driver, f"#{name} img")
    if image is None:
        return None
    with urllib.request.urlopen(image.get_attribute("src"), timeout=30) as response:
        return np.asarray(Image.open(response).convert("RGB"))


def _upload(driver, path) -> None:
    """Clear the photo there is (its Clear button), then choose `path` in the upload's file input."""
    clear = _element(driver, "#photo button[aria-label='Clear']")
    if clear is not None:
        clear.click()
    _wait(lambda: _element(driver, "#photo input[type=file]"), 30, "the upload field").send_keys(str(path))


@pytest.mark.browser
def test_the_page_cuts_out_an_upload_as_process_and_generate_does_and_explains_a_bad_file(
    browser,  # noqa: F811
    app,
    tmp_path,
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, checkpoint = app
    browser.set_window_size(1280, 900)
    browser.execute_cdp_cmd("Network.enable", {})
    browser.get(url)

    example = _wait(lambda: browser.find_elements(By.XPATH, "//button[contains(., '_00000.jpg')]"), 60, "examples")
    example[0].click()  # one of the course's real test photographs
    _wait(lambda: re.match(r"Cut out \S+_00000\.jpg", _message(browser)), 60, "the example's cut-out")

    photo = shipped_photos()[-1]
    _upload(browser, photo)
    _wait(lambda: f"Cut out {photo.name}" in _message(browser), 60, "the upload's cut-out")
    expected = process_and_generate(photo, tmp_path / "expected.png", checkpoint)
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    browser.find_element(By.ID, "download").click()
    downloaded = tmp_path / f"{photo.stem}.png"  # named after the photo
    _wait(lambda: downloaded.is_file() and not list(tmp_path.glob("*.crdownload")), 30, f"{downloaded.name}")
    assert np.array_equal(np.asarray(Image.open(downloaded)), np.asarray(Image.open(expected)))  # pixel for pixel
    checker, mask = _shown(browser, "checker"), _shown(browser, "mask")
    assert np.array_equal(checker, views(expected, None)[0]) and np.array_equal(mask[..., 0], views(expected, None)[2])

    browser.find_element(By.CSS_SELECTOR, "#colour button.dialog-button").click()  # a colour of one's choice
    field = _wait(lambda: _element(browser, "#colour input[type=text]"), 10, "the colour's field")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("#00ff00", Keys.ENTER)
    browser.find_element(By.ID, "message").click()  # away from the picker: it closes
    green = views(expected, "#00ff00")[1]
    _wait(lambda: np.array_equal(_shown(browser, "pasted"), green), 30, "the cut-out over green")
    browser.save_screenshot(str(tmp_path / "app.png"))

    text = tmp_path / "notes.jpg"
    text.write_text("a shopping list, not a photo")
    with pytest.raises(ImageError) as predicted:
        open_image(text)  # what predict says of it, naming the file
    _upload(browser, text)
    wanted = str(predicted.value).replace(str(text), text.name)
    _wait(lambda: wanted in _message(browser), 60, f"the message {wanted!r}")
    assert _shown(browser, "checker") is None and _shown(browser, "mask") is None  # no cut-out left from before

    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(entry => entry.name)")
    assert loaded and not [address for address in loaded if address.startswith("http") and not address.startswith(url)]


def test_the_page_pastes_the_cut_out_on_the_colour_chosen(tmp_path):
    assert np.allclose(background_rgb("#00ff00"), [0, 1, 0]) and np.allclose(background_rgb("#0f0"), [0, 1, 0])
    assert np.allclose(background_rgb("rgba(255, 127.5, 0, 1)"), [1, 0.5, 0])
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0] = (200, 10, 10, 255)  # the top row opaque red, the bottom row transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    checker, pasted, mask = views(tmp_path / "cut.png", "#0000ff")
    assert pasted[0].tolist() == [[200, 10, 10]] * 3 and pasted[1].tolist() == [[0, 0, 255]] * 3
    assert mask.tolist() == [[255] * 3, [0] * 3] and checker[0].tolist() == [[200, 10, 10]] * 3
