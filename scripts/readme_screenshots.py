"""Take the README's walkthrough screenshots from a running lab, with Chromium driven by Playwright (as the browser
tests do). Serve the lab with at least two finished runs on the same dataset first, e.g.

    GALAXY_LAB_RUNS_DIR=/path/to/runs .venv/bin/galaxy-lab serve --port 8600 --headless &
    .venv/bin/python scripts/readme_screenshots.py http://127.0.0.1:8600 --upload some-galaxy.jpg

The pictures go to docs/screenshots/ (1-dataset.png ... 7-shared-mistakes.png).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def settle(page) -> None:
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    page.wait_for_timeout(2500)  # images and charts finish drawing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--upload", type=Path, required=True, help="an image for the Classify page")
    args = parser.parse_args()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        expect.set_options(timeout=120_000)

        def shoot(name: str) -> None:
            settle(page)
            page.screenshot(path=str(OUTPUT / f"{name}.png"))

        page.goto(f"{args.url}/dataset")
        page.get_by_role("combobox", name="Dataset", exact=True).click()
        page.get_by_role("option", name="gz1-3class").click()
        expect(page.get_by_test_id("stSidebar").get_by_text("gz1-3class")).to_be_visible()
        page.get_by_role("tab", name="Browse").click()
        expect(page.get_by_text("Look closer at")).to_be_visible()
        shoot("1-dataset")
        page.goto(f"{args.url}/train")
        expect(page.locator(".js-plotly-plot").first).to_be_visible()
        page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        shoot("2-train")
        page.goto(f"{args.url}/evaluate")
        page.get_by_role("tab", name="Confusion matrix").click()
        plot_area = page.locator(".js-plotly-plot .nsewdrag").first
        box = plot_area.bounding_box()
        settle(page)
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 6)  # true edge, predicted smooth
        expect(page.get_by_text("and were predicted")).to_be_visible()
        shoot("3-confusion-matrix")
        page.get_by_role("tab", name="Grad-CAM").click()
        expect(page.get_by_text("What the network looks at, per class")).to_be_visible()
        shoot("4-gradcam")
        page.goto(f"{args.url}/classify")
        page.locator("input[type=file]").set_input_files(args.upload)
        expect(page.get_by_text("what the model sees")).to_be_visible()
        shoot("5-classify")
        page.goto(f"{args.url}/compare")
        page.get_by_role("tab", name="Significance").click()
        expect(page.get_by_text("p-value (McNemar, exact)")).to_be_visible()
        shoot("6-compare")
        page.get_by_role("tab", name="Shared mistakes").click()
        expect(page.get_by_text("Every chosen run gets")).to_be_visible()
        shoot("7-shared-mistakes")
        browser.close()
    print(f"screenshots in {OUTPUT}")


if __name__ == "__main__":
    main()
