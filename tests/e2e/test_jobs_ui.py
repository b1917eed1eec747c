"""The Jobs view in a real browser (Debian's Chromium, Playwright, as in test_ui.py): submit a PDF,
watch its progress bar move, download the result, cancel a long job."""

from pathlib import Path

from test_jobs import CATALOG, ENV, expected, make_pdf
from test_ui import browser, page, pytestmark, screenshot  # noqa: F401  (fixtures, the Chromium skip)


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

