"""The page (repro/page) in a real browser: the system's Chromium, headless, from file:// (repro.page.browser).
Slow tier (tests/conftest.py SLOW): the page is built from the committed study, then read in Chromium."""

import base64
import json

import numpy as np
import pytest
import torch

from repro.net.model import forward, outputs
from repro.page.browser import chromium, page_url
from repro.page.build import build_page
from repro.page.nets import load_nets
from repro.predict import predict, prepare_image
from repro.report.records import group_records, load_records
from repro.resources import ladder_dir

from .conftest import REPO, data_dir

RESULTS = REPO / "results"
N_DIGITS = 100  # test digits of each dataset compared with the Python model (the page's first ones)


@pytest.fixture(scope="module")
def page_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    groups = group_records(load_records(RESULTS).records)
    warnings = []
    for name, data in build_page(RESULTS, ladder_dir(), groups, str(data_dir()), warnings.append).items():
        (folder / name).write_bytes(data)
    assert not warnings
    names = sorted(p.name for p in folder.iterdir())
    assert {"index.html", "page.js", "data.js", "data-1.js"} <= set(names), names
    assert all((folder / n).stat().st_size < 1_000_000 for n in names)  # no committed file over 1 MB
    return folder


@pytest.fixture(scope="module")
def browser(page_dir):
    driver = chromium()
    driver.get(page_url(page_dir))
    yield driver
    driver.quit()


def test_the_page_loads_from_file_with_no_console_error_and_no_network_request(page_dir):
    driver = chromium()
    try:
        driver.get(page_url(page_dir))
        driver.find_element("id", "next-usps").click()
        errors = [m for m in driver.get_log("browser") if m["level"] in ("SEVERE", "WARNING")]
        requests = [json.loads(m["message"])["message"] for m in driver.get_log("performance")]
        urls = [r["params"]["request"]["url"] for r in requests if r["method"] == "Network.requestWillBeSent"]
    finally:
        driver.quit()
    assert not errors, errors
    files = {p.name for p in page_dir.iterdir()}
    assert {u.rsplit("/", 1)[-1] for u in urls} == files, urls  # the page and its scripts, nothing else
    assert all(u.startswith("file://") for u in urls), urls
    assert sum((page_dir / f).stat().st_size for f in files) < 4_000_000  # "a few MB at most"


def test_forward_pass_equals_the_python_model_for_every_net(browser, usps, mnist16):
    nets = load_nets(RESULTS, ladder_dir())
    page = browser.execute_script(
        "const P = window.lecunPage;"
        "return P.NETS.map((n) => [n.dataset, n.label, Array.from({length: arguments[0]},"
        "  (_, k) => Array.from(P.forward(n, P.digitPixels(n.dataset, k)).out))]);", N_DIGITS)
    page = {(ds, label): js for ds, label, js in page}
    assert sorted(page) == sorted((n.dataset, n.label) for n in nets)
    assert len(nets) == 7 * 2 + 5  # the ladder on both datasets, the faithfulness rungs (fc40 too) on usps
    x = {"usps": usps.x_test[:N_DIGITS], "mnist16": mnist16.x_test[:N_DIGITS]}
    for net in nets:
        js = page[(net.dataset, net.label)]
        with torch.no_grad():
            expected = outputs(net.cfg, forward(net.state, x[net.dataset], net.cfg)).double()
        diff = (torch.tensor(js, dtype=torch.float64) - expected).abs().max().item()
        assert diff <= 1e-5, f"{net.name}: page and model differ by {diff:.2e}"


def test_the_page_carries_the_digits_exactly(browser, usps, mnist16):
    for ds, data in (("usps", usps), ("mnist16", mnist16)):
        b64, index = browser.execute_script(
            f"const D = window.PAGE_DATA, d = D.digits.{ds}; return [D.blobs[d.pixels], d.index];")
        pixels = np.frombuffer(base64.b64decode(b64), dtype="<f4").reshape(-1, 16, 16)
        assert torch.equal(torch.from_numpy(pixels.copy()), data.x_test[index])


# Strokes in the pad's pixels from its top left (the pad is 192x192 CSS pixels): a 7 and a 0.
STROKES = {"usps": [[(50, 45), (140, 45), (100, 110), (80, 165)]],
           "mnist16": [[(96, 30), (55, 60), (50, 120), (96, 165), (140, 120), (135, 60), (96, 30)]]}


def _draw(driver, strokes):
    from selenium.webdriver.common.action_chains import ActionChains

    pad = driver.find_element("id", "pad")
    for stroke in strokes:
        chain = ActionChains(driver).move_to_element_with_offset(pad, stroke[0][0] - 96, stroke[0][1] - 96)
        chain.click_and_hold()
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
            for t in (0.25, 0.5, 0.75, 1.0):  # several pointer moves per segment, as a hand makes them
                chain.move_to_element_with_offset(pad, round(x0 + t * (x1 - x0)) - 96, round(y0 + t * (y1 - y0)) - 96)
        chain.release().perform()


@pytest.mark.parametrize("dataset", ["usps", "mnist16"])
def test_strokes_drawn_with_the_mouse_are_prepared_as_repro_predict_prepares_the_saved_canvas(
        browser, dataset, tmp_path):
    browser.execute_script(f"document.getElementById('dataset').value = '{dataset}';"
                           "document.getElementById('dataset').dispatchEvent(new Event('change'));"
                           "document.getElementById('clear').click();")
    _draw(browser, STROKES[dataset])
    page_input, png, answers = browser.execute_script(
        "const P = window.lecunPage, x = P.state.input;"
        "return [Array.from(x), document.getElementById('pad').toDataURL('image/png'),"
        "  P.NETS.filter((n) => n.dataset === P.state.dataset).map((n) => [n.label, P.answerOf(P.forward(n, x).out)])];")
    path = tmp_path / "pad.png"
    path.write_bytes(base64.b64decode(png.split(",", 1)[1]))
    expected = prepare_image(path, dataset)
    assert (expected > 0).sum() > 10  # strokes, not an empty pad
    diff = (torch.tensor(page_input, dtype=torch.float64).reshape(16, 16) - expected.double()).abs().max().item()
    assert diff <= 1e-6, diff
    [(_, _, said)] = predict([path], dataset, RESULTS, ladder_dir())
    assert [(a.label, -1 if a.digit is None else a.digit) for a in said] == [tuple(a) for a in answers]


def test_a_test_digit_shows_its_maps_and_kernels(browser, tmp_path):
    browser.execute_script("document.getElementById('dataset').value = 'usps';"
                           "document.getElementById('dataset').dispatchEvent(new Event('change'));")
    browser.find_element("id", "next-usps").click()
    spreads = browser.execute_script(
        "return Array.from(document.querySelectorAll('#maps canvas')).map((c) => {"
        "  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "  let lo = 255, hi = 0; for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }"
        "  return hi - lo; });")
    assert len(spreads) == 36  # H1's 12 maps, H2's 12, the 12 kernels
    assert sum(s > 0 for s in spreads) >= 30, spreads  # images, not blank (a map may be flat for one digit)
    shot = tmp_path / "page.png"
    browser.save_screenshot(str(shot))
    from PIL import Image

    with Image.open(shot) as im:
        maps = browser.find_element("id", "maps").rect
        region = np.asarray(im.convert("L").crop((maps["x"], maps["y"], maps["x"] + maps["width"],
                                                  maps["y"] + maps["height"])))
    assert region.std() > 20  # the screenshot shows the maps


def test_fc40_says_it_has_no_maps(browser):
    browser.execute_script("document.getElementById('dataset').value = 'usps';"
                           "document.getElementById('dataset').dispatchEvent(new Event('change'));")
    browser.find_element("id", "next-usps").click()
    browser.execute_script("const s = document.getElementById('rung');"
                           "s.value = String(window.lecunPage.NETS.findIndex((n) => n.label === 'fc40'));"
                           "s.dispatchEvent(new Event('change'));")
    assert "no feature maps" in browser.find_element("id", "maps").text


def test_the_wrong_digits_are_those_the_records_count(page_dir):
    # the page's lists come from float64 forward passes; the records count in float32: the same digits
    data = json.loads((page_dir / "data.js").read_text().split("=", 1)[1].rstrip().rstrip(";"))
    groups = group_records(load_records(RESULTS).records)
    for net in data["nets"]:
        seed0 = next(r for r in groups[(net["dataset"], net["label"])].ok if r["seed"] == 0)
        assert net["n_wrong"] == seed0["final"]["test_mistakes"], net["label"]
        assert net["wrong"] is not None and len(net["wrong"]) == net["n_wrong"]
