"""The README's picture of the page: paper/page/index.html opened in the system's headless Chromium (repro.page.
browser), a digit drawn on its pad with mouse strokes, the top of the page saved as paper/page/screenshot.png.

    .venv/bin/python scripts/page_screenshot.py [--page paper/page] [--out paper/page/screenshot.png]

Run it after `repro report --study` changes the page (the report does not make it: a screenshot's bytes
depend on the browser's fonts)."""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains

from repro.page.browser import chromium, page_url

ROOT = Path(__file__).resolve().parents[1]
STROKES = [[(60, 40), (135, 40), (100, 105), (80, 160)], [(75, 100), (130, 100)]]  # a 7, crossed, in pad pixels


def draw(driver, strokes) -> None:
    pad = driver.find_element("id", "pad")
    half = pad.rect["width"] / 2
    for stroke in strokes:
        chain = ActionChains(driver).move_to_element_with_offset(pad, stroke[0][0] - half, stroke[0][1] - half)
        chain.click_and_hold()
        for x, y in stroke[1:]:
            chain.move_to_element_with_offset(pad, x - half, y - half)
        chain.release().perform()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, default=ROOT / "paper" / "page")
    parser.add_argument("--out", type=Path, default=ROOT / "paper" / "page" / "screenshot.png")
    args = parser.parse_args()
    driver = chromium(1180, 1000)
    try:
        driver.get(page_url(args.page))
        draw(driver, STROKES)
        time.sleep(0.5)  # let the browser paint the last stroke before the picture is taken
        bottom = driver.find_element("id", "maps").rect
        shot = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
    finally:
        driver.quit()
    shot.crop((0, 0, shot.width, min(shot.height, int(bottom["y"] + bottom["height"]) + 10))).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
