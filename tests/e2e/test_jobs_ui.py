"""The Jobs view in a real browser (Debian's Chromium, Playwright): submit a PDF, watch its
progress bar move, download the result, cancel a long job."""

from pathlib import Path

import pytest

from support import ARTIFACTS

from test_jobs import CATALOG, ENV, expected, make_pdf

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
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_submit_follow_download_and_cancel_a_job(server_factory, tmp_path, page):
    # The echo model answers each page's pixel size, so the downloaded text names every page.
    server = server_factory(CATALOG, env=ENV)
    pdf = make_pdf(tmp_path / "doc.pdf", 12)
    page.goto(server.url + "/#jobs")
    page.wait_for_selector('#job-model option[value="echo"]', state="attached")
    try:
        # Pages take 0.3 s each on the echo model, so the bar is seen part way.
        page.set_input_files("#job-file", pdf)
        _submit_with_options(page, '{"sleep_s": 0.3, "dims": true}')
        row = page.locator("#jobs-table tr.job").first
        row.wait_for(timeout=10_000)
        page.wait_for_function("""() => { const bar = document.querySelector('#jobs-table .job-progress');
            return bar && bar.value > 0 && bar.value < bar.max; }""", timeout=30_000)
        screenshot(page, "ui-jobs-progress.png")
        page.locator("#jobs-table tr.job-succeeded").wait_for(timeout=60_000)
        assert page.locator("#jobs-table tr.job-succeeded .job-pages").inner_text().startswith("12 / 12")
        with page.expect_download() as info:
            page.click("#jobs-table tr.job-succeeded button.job-text")
        text = Path(info.value.path()).read_text()
        assert text.split() == [expected(n) for n in range(1, 13)]
        with page.expect_download() as info:
            page.click("#jobs-table tr.job-succeeded button.job-markdown")
        assert info.value.suggested_filename.endswith(".md")

        # A long job, cancelled from the page.
        page.set_input_files("#job-file", str(make_pdf(tmp_path / "long.pdf", 100)))
        _submit_with_options(page, '{"sleep_s": 0.3}')
        page.locator("#jobs-table tr.job-running button.job-cancel, "
                     "#jobs-table tr.job-queued button.job-cancel").first.click()
        page.locator("#jobs-table tr.job-cancelled").wait_for(timeout=10_000)
        screenshot(page, "ui-jobs-done.png")
    finally:
        screenshot(page, "ui-jobs-last.png")
    statuses = sorted(j["status"] for j in server.client.get("/v1/jobs").json()["data"])
    assert statuses == ["cancelled", "succeeded"]


def _submit_with_options(page, options: str) -> None:
    """The form has no options field of its own: tests add the echo model's knobs through one."""
    page.evaluate("""(options) => {
        const original = window.fetch;
        window.fetch = (url, init) => {
            if (url === '/v1/jobs' && init && init.body instanceof FormData) init.body.append('options', options);
            return original(url, init);
        };
        document.getElementById('job-submit').click();
        setTimeout(() => { window.fetch = original; }, 0);
    }""", options)


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
