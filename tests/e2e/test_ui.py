"""The web page in a real browser: Debian's Chromium, driven headless by Playwright.

Each test saves a screenshot under artifacts/. Skipped only when
/usr/bin/chromium is absent (`apt-get install chromium`); Playwright's own
browser downloads are never used.
"""

import re
from pathlib import Path

import pytest

from support import ARTIFACTS, render_lines, wait_until

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def test_try_two_models_side_by_side(server_factory, shared_data_dir, tmp_path, page):
    server = server_factory(data_dir=shared_data_dir)
    image = tmp_path / "page.png"
    render_lines(["Hello venvserve", "Side by side"], size=48, path=image)

    page.goto(server.url + "/")
    page.wait_for_selector('#model-list input[value="tesseract"]')
    page.set_input_files("#file-input", str(image))
    page.wait_for_selector("#preview img")
    for box in page.locator('#model-list input[name="model"]').all():
        box.uncheck()
    page.check('#model-list input[value="tesseract"]')
    page.check('#model-list input[value="rapidocr"]')
    page.click("#run")

    texts = {}
    try:
        for model in ("tesseract", "rapidocr"):
            card = page.locator(f'.result[data-model="{model}"]')
            card.and_(page.locator('[data-state="done"], [data-state="error"]')).wait_for(timeout=240_000)
            assert card.get_attribute("data-state") == "done", card.inner_text()
            texts[model] = card.locator("pre.text").inner_text()
            assert re.search(r"inference \d", card.locator(".timings").inner_text())
    finally:
        screenshot(page, "ui-try-side-by-side.png")
    for model, text in texts.items():
        assert "hello venvserve" in normalise(text), (model, text)
        assert "side by side" in normalise(text), (model, text)


def test_status_builds_an_env(server_factory, tmp_path, page):
    catalog = [{"id": "tesseract", "architecture": "tesseract", "python_env": "tesseract",
                "options": {"lang": "eng"}},
               {"id": "echo", "architecture": "echo"}]
    server = server_factory(catalog, data_dir=tmp_path / "fresh-data")
    page.goto(server.url + "/#status")
    status = page.locator('#envs-table tr.env-row[data-env="tesseract"] td.status')
    status.locator('.badge:text-is("not installed")').wait_for(timeout=10_000)
    page.wait_for_selector('#models-table tr[data-model="echo"]')
    page.wait_for_selector("#budget .budget-row")

    page.click('#envs-table tr.env-row[data-env="tesseract"] button.env-action')
    try:
        page.wait_for_function(
            """() => document.querySelector('#envs-table tr.env-row[data-env="tesseract"] td.status')
                       ?.dataset.status === 'ready'""", timeout=180_000)
        # The size comes from GET /v1/envs/{name} once the env is ready.
        page.wait_for_function(
            """() => /\\d/.test(document.querySelector('#envs-table tr.env-row[data-env="tesseract"] td.size')
                               ?.textContent || '')""", timeout=10_000)
    finally:
        screenshot(page, "ui-status-env-build.png")
    log = page.locator('#envs-table tr.log-row[data-env="tesseract"] .log').inner_text()
    assert log.strip(), "the live build log stayed empty"
    assert "built in" in page.locator('#envs-table tr.log-row[data-env="tesseract"] .progress').inner_text()
    assert server.client.get("/v1/envs/tesseract").json()["status"] == "ready"


# -- the first screen, unavailable models, worker logs, builds that cannot help --------------------

def test_run_and_format_are_above_the_fold_and_unavailable_models_are_folded(server_factory, tmp_path, browser):
    catalog = [{"id": "gpu-only", "architecture": "echo", "device": "cuda",
                "description": "stands for a GPU model on a machine without one"},
               {"id": "echo", "architecture": "echo"},
               {"id": "no-env", "architecture": "echo", "python_env": "no-such-env"}]
    server = server_factory(catalog)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        page.wait_for_selector('#model-list input[value="echo"]')
        for selector in ("#run", "#format-toggle"):
            box = page.locator(selector).bounding_box()
            assert box and box["y"] >= 0 and box["y"] + box["height"] <= 800, (selector, box)
        # Available models are listed first and alone; the others are folded, with a count.
        assert page.locator('#model-list input[name="model"]').evaluate_all("(xs) => xs.map((x) => x.value)") == ["echo"]
        fold = page.locator("#model-unavailable")
        assert fold.is_visible() and fold.get_attribute("open") is None
        assert fold.locator("summary").inner_text().strip() == "Not available here (2)"
        assert not page.locator('#model-unavailable input[value="gpu-only"]').is_visible()
        fold.locator("summary").click()
        note = page.locator('#model-unavailable label:has(input[value="gpu-only"]) .note')
        assert "GPU" in note.inner_text()
        # One line each, however long the reason is.
        height = note.evaluate("(n) => n.getBoundingClientRect().height")
        line = note.evaluate("(n) => parseFloat(getComputedStyle(n).lineHeight) || 20")
        assert height <= line * 1.5, (height, line)
        screenshot(page, "ui-try-first-screen.png")
    finally:
        context.close()


def test_status_shows_a_models_worker_output_live(server_factory, page):
    server = server_factory([{"id": "echo", "architecture": "echo"}])
    assert server.client.post("/v1/models/echo/load").status_code == 200
    page.goto(server.url + "/#status")
    page.click('#models-table tr[data-model="echo"] button.logs')
    note = page.locator('#models-table tr.model-log-row[data-log-of="echo"] .progress')
    note.wait_for(timeout=10_000)
    assert "live" in note.inner_text()
    # The worker writes this line after the log is open: it arrives live.
    assert server.client.post("/v1/models/echo/infer", json={"crash": True}).status_code == 502
    try:
        page.wait_for_function(
            """() => document.querySelector('tr.model-log-row[data-log-of="echo"] .log')
                       ?.textContent.includes('echo: crashing as asked')""", timeout=20_000)
    finally:
        screenshot(page, "ui-status-model-log.png")


def test_building_a_cuda_env_without_a_gpu_asks_first(server_factory, tmp_path, page):
    catalog = [{"id": "gpu-tess", "architecture": "tesseract", "python_env": "tesseract", "device": "cuda"},
               {"id": "echo", "architecture": "echo"}]
    server = server_factory(catalog, data_dir=tmp_path / "fresh")
    if server.client.get("/v1/models/gpu-tess").json()["available"]:
        pytest.skip("this machine has a GPU")
    questions = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.goto(server.url + "/#status")
    button = page.locator('#envs-table tr.env-row[data-env="tesseract"] button.env-action')
    button.wait_for(timeout=10_000)
    page.wait_for_selector('#models-table tr[data-model="gpu-tess"]')
    button.click()
    wait_until(lambda: questions)
    assert "GPU" in questions[0] and "gpu-tess" in questions[0], questions
    # Declined: nothing was built.
    assert server.client.get("/v1/envs/tesseract").json()["status"] == "not_installed"
