"""Durable OCR jobs through a real server with the echo model: a job that outlives three
SIGKILLs of the gateway, retries, cancel, delete, expiry, bounds, keys, unknown ids."""

import json
import os
import random
import signal
import sqlite3
import time

import httpx
import pytest
from PIL import Image

from support import assert_error, start_server, wait_until

# The echo model: pages are told apart by their pixel size ("dims"), and every page a worker
# starts is appended to a tally file. At 72 dpi a page rendered from Pillow's PDF keeps its pixels.
CATALOG = [{"id": "echo", "architecture": "echo", "replicas": 2}]
ENV = {"VENVSERVE_PDF_DPI": "72"}
HEIGHT = 40


def make_pdf(path, pages: int) -> str:
    """Page i (1-based) is 100 + i pixels wide: the echo model answers "<width>x40" for it."""
    images = [Image.new("L", (100 + i, HEIGHT), 255) for i in range(1, pages + 1)]
    images[0].save(path, "PDF", save_all=True, append_images=images[1:], resolution=72)
    return str(path)


def expected(page: int) -> str:
    return f"{100 + page}x{HEIGHT}"


def submit(client, path, options=None, status=202, model="echo", **headers):
    with open(path, "rb") as f:
        r = client.post("/v1/jobs", files={"file": (os.path.basename(path), f)},
                        data={"model": model, "options": json.dumps(options or {})}, headers=headers)
    assert r.status_code == status, r.text
    return r


def job(client, job_id) -> dict:
    r = client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


def finished(client, job_id, timeout=60.0) -> dict:
    return wait_until(lambda: (lambda j: j if j["status"] not in ("queued", "running") else None)(
        job(client, job_id)), timeout=timeout, interval=0.1)


def tally_runs(path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_a_job_outlives_three_sigkills_of_the_gateway(tmp_path):
    pdf = make_pdf(tmp_path / "long.pdf", 200)
    tally = tmp_path / "tally"
    data = tmp_path / "data"
    server = start_server(tmp_path / "s0", CATALOG, data_dir=data, env=ENV)
    try:
        r = submit(server.client, pdf, {"sleep_s": 0.05, "tally": str(tally), "dims": True})
        assert r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
        job_id = r.json()["id"]
        assert len(job_id) == 32 and r.json()["pages_total"] == 200
        thresholds = sorted(random.sample(range(15, 185), 3))
        for kill, threshold in enumerate(thresholds):
            wait_until(lambda: job(server.client, job_id)["pages_done"] >= threshold, timeout=60, interval=0.01)
            os.kill(server.pid, signal.SIGKILL)
            server.proc.wait()
            server.client.close()
            server = start_server(tmp_path / f"s{kill + 1}", CATALOG, data_dir=data, env=ENV)
            # It resumes where it stopped: nothing committed is lost.
            assert job(server.client, job_id)["pages_done"] >= threshold
        view = finished(server.client, job_id)
        assert view["status"] == "succeeded" and view["pages_done"] == 200 and view["pages_failed"] == 0
        result = server.client.get(f"/v1/jobs/{job_id}/result").json()
        pages = result["files"][0]["pages"]
        assert [p["page"] for p in pages] == list(range(1, 201))
        assert [p["text"] for p in pages] == [expected(n) for n in range(1, 201)]
        runs = tally_runs(tally)
        print(f"\n200-page job, 3 SIGKILLs after {thresholds} pages: {len(runs)} page runs")
        assert sorted(set(map(int, runs))) == list(range(1, 201))
        assert len(runs) <= 200 + CATALOG[0]["replicas"] * 3, f"{len(runs)} page runs for 200 pages"
    finally:
        server.stop()


@pytest.fixture
def echo(server_factory):
    return server_factory(CATALOG, env=ENV)


def test_a_page_whose_worker_crashes_once_succeeds(echo, tmp_path):
    pdf = make_pdf(tmp_path / "doc.pdf", 6)
    tally = tmp_path / "tally"
    job_id = submit(echo.client, pdf, {"tally": str(tally), "dims": True, "crash_pages": [3],
                                       "crash_once": True}).json()["id"]
    view = finished(echo.client, job_id)
    assert view["status"] == "succeeded" and view["pages_failed"] == 0
    pages = echo.client.get(f"/v1/jobs/{job_id}/result").json()["files"][0]["pages"]
    assert [p["text"] for p in pages] == [expected(n) for n in range(1, 7)]
    assert tally_runs(tally).count("3") == 2
    metrics = echo.client.get("/metrics").text
    assert "venvserve_job_page_retries_total 1.0" in metrics, [
        line for line in metrics.splitlines() if line.startswith("venvserve_job_page_retries")]


def test_a_page_that_always_crashes_fails_alone(echo, tmp_path):
    pdf = make_pdf(tmp_path / "doc.pdf", 4)
    tally = tmp_path / "tally"
    job_id = submit(echo.client, pdf, {"tally": str(tally), "dims": True, "crash_pages": [2]}).json()["id"]
    view = finished(echo.client, job_id)
    assert view["status"] == "succeeded" and view["pages_done"] == 4 and view["pages_failed"] == 1
    assert view["files"][0]["pages_failed"] == 1
    pages = echo.client.get(f"/v1/jobs/{job_id}/result").json()["files"][0]["pages"]
    assert pages[1]["error"]["code"] == "worker_crashed" and "text" not in pages[1]
    assert [pages[i]["text"] for i in (0, 2, 3)] == [expected(1), expected(3), expected(4)]
    assert tally_runs(tally).count("2") == 4  # tried, then retried three times


def test_result_waits_for_the_end_then_comes_as_json_text_or_markdown(echo, tmp_path):
    pdf = make_pdf(tmp_path / "doc.pdf", 8)
    job_id = submit(echo.client, pdf, {"sleep_s": 0.2, "dims": True}).json()["id"]
    assert_error(echo.client.get(f"/v1/jobs/{job_id}/result"), 409, "job_not_finished")
    wait_until(lambda: job(echo.client, job_id)["pages_done"] >= 2, timeout=30)
    partial = echo.client.get(f"/v1/jobs/{job_id}/result", params={"partial": "true"}).json()
    done = partial["files"][0]["pages"]
    assert 2 <= len(done) < 8 and all(p["text"] == expected(p["page"]) for p in done)
    # The events stream: the status first, a page event per page, the final status last.
    kinds = []
    with echo.client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kinds.append(line[7:])
            if line.startswith("data: ") and kinds[-1] == "status" and \
                    json.loads(line[6:])["status"] == "succeeded":
                break
    assert kinds[0] == "status" and kinds[-1] == "status" and "page" in kinds
    text = echo.client.get(f"/v1/jobs/{job_id}/result", headers={"Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain")
    assert "attachment" in text.headers["content-disposition"]
    assert text.text.split() == [expected(n) for n in range(1, 9)]
    md = echo.client.get(f"/v1/jobs/{job_id}/result", params={"format": "markdown"})
    assert md.headers["content-type"].startswith("text/markdown") and expected(8) in md.text


def test_cancel_stops_feeding_and_delete_removes_rows_and_files(echo, tmp_path):
    pdf = make_pdf(tmp_path / "doc.pdf", 100)
    tally = tmp_path / "tally"
    job_id = submit(echo.client, pdf, {"sleep_s": 0.2, "tally": str(tally)}).json()["id"]
    wait_until(lambda: len(tally_runs(tally)) >= 3, timeout=30)
    r = echo.client.delete(f"/v1/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    at_cancel = len(tally_runs(tally))
    time.sleep(1.0)  # what was already on a worker lands; nothing new may start
    settled = len(tally_runs(tally))
    assert settled - at_cancel <= CATALOG[0]["replicas"]
    time.sleep(1.0)
    assert len(tally_runs(tally)) == settled
    files = echo.data_dir / "spool" / "jobs" / job_id
    assert not files.exists()
    # A finished job: DELETE removes it for good.
    r = echo.client.delete(f"/v1/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert_error(echo.client.get(f"/v1/jobs/{job_id}"), 404, "job_not_found")
    db = sqlite3.connect(echo.data_dir / "jobs" / "jobs.sqlite3")
    for table, column in (("jobs", "id"), ("files", "job_id"), ("pages", "job_id")):
        assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (job_id,)).fetchone()[0] == 0


def test_unknown_ids_and_bad_input_queue_nothing(echo, tmp_path):
    for method, path in (("GET", "/v1/jobs/nope"), ("GET", "/v1/jobs/nope/result"),
                         ("GET", "/v1/jobs/nope/events"), ("DELETE", "/v1/jobs/nope")):
        assert_error(echo.client.request(method, path), 404, "job_not_found")
    pdf = make_pdf(tmp_path / "doc.pdf", 2)
    assert_error(submit(echo.client, pdf, model="nope", status=404), 404, "model_not_found")
    gif = tmp_path / "x.gif"
    gif.write_bytes(b"GIF89a" + b"\0" * 64)
    assert_error(submit(echo.client, gif, status=415), 415, "unsupported_media_type")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n garbage")
    assert submit(echo.client, broken, status=400).json()["error"]["code"]
    assert echo.client.get("/v1/jobs").json()["data"] == []
    assert os.listdir(echo.data_dir / "spool" / "jobs") == []


def test_listing_is_newest_first_with_a_cursor(echo, tmp_path):
    pdf = make_pdf(tmp_path / "doc.pdf", 1)
    ids = [submit(echo.client, pdf).json()["id"] for _ in range(3)]
    first = echo.client.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in first["data"]] == ids[:0:-1] and first["next_cursor"]
    rest = echo.client.get("/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [j["id"] for j in rest["data"]] == [ids[0]] and rest["next_cursor"] is None
    for job_id in ids:
        finished(echo.client, job_id)
    assert len(echo.client.get("/v1/jobs", params={"status": "succeeded"}).json()["data"]) == 3
    assert_error(echo.client.get("/v1/jobs", params={"status": "bogus"}), 400)


def test_finished_jobs_expire_after_the_ttl(server_factory, tmp_path):
    server = server_factory(CATALOG, env={**ENV, "VENVSERVE_JOB_TTL_H": "0.0003"})  # about a second
    job_id = submit(server.client, make_pdf(tmp_path / "doc.pdf", 1)).json()["id"]
    finished(server.client, job_id)
    wait_until(lambda: server.client.get(f"/v1/jobs/{job_id}").status_code == 404, timeout=15)


def test_the_queue_bound_and_the_disk_quota(server_factory, tmp_path):
    server = server_factory(CATALOG, env={**ENV, "VENVSERVE_MAX_JOBS_QUEUED": "2"})
    pdf = make_pdf(tmp_path / "doc.pdf", 20)
    ids = [submit(server.client, pdf, {"sleep_s": 1}).json()["id"] for _ in range(2)]
    r = submit(server.client, pdf, status=429)
    assert_error(r, 429, "too_many_jobs")
    assert int(r.headers["retry-after"]) > 0
    for job_id in ids:
        server.client.delete(f"/v1/jobs/{job_id}")
    submit(server.client, make_pdf(tmp_path / "one.pdf", 1))

    tight = server_factory(CATALOG, env={**ENV, "VENVSERVE_JOBS_DISK_QUOTA_MB": "0.001"})
    assert_error(submit(tight.client, pdf, status=507), 507, "jobs_quota_exceeded")
    assert os.listdir(tight.data_dir / "spool" / "jobs") == []


def test_job_routes_need_the_api_key(server_factory, tmp_path):
    server = server_factory(CATALOG, env=ENV, args=("--api-key", "secret"))
    pdf = make_pdf(tmp_path / "doc.pdf", 1)
    assert_error(submit(server.client, pdf, status=401), 401, "unauthorized")
    assert_error(server.client.get("/v1/jobs"), 401, "unauthorized")
    job_id = submit(server.client, pdf, Authorization="Bearer secret").json()["id"]
    assert_error(server.client.get(f"/v1/jobs/{job_id}"), 401, "unauthorized")
    keyed = httpx.Client(base_url=server.url, headers={"Authorization": "Bearer secret"})
    assert finished(keyed, job_id)["status"] == "succeeded"
    keyed.close()


def test_the_cli_submits_follows_and_fetches_jobs(echo, tmp_path):
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "venvserve.cli", *args, "--server", echo.url],
                              capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})

    small = make_pdf(tmp_path / "small.pdf", 3)
    r = cli("ocr", small, "--job")
    assert r.returncode == 0, r.stderr
    assert "Submitted" in r.stderr and r.stdout.split("\n\n")[0].strip().endswith("bytes")
    job_id = echo.client.get("/v1/jobs").json()["data"][0]["id"]
    listed = cli("jobs", "list")
    assert job_id in listed.stdout and "3/3" in listed.stdout
    assert cli("jobs", "result", job_id).stdout.count("bytes") == 3
    assert cli("jobs", "wait", job_id).returncode == 0

    # Ctrl-C while following leaves the job running on the server, and says how to fetch it.
    long = make_pdf(tmp_path / "long.pdf", 40)
    proc = subprocess.Popen([sys.executable, "-m", "venvserve.cli", "ocr", long, "--server", echo.url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    running = wait_until(lambda: [j for j in echo.client.get("/v1/jobs").json()["data"] if j["status"] == "running"],
                         timeout=30)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "venvserve jobs result" in err, err
    assert job(echo.client, running[0]["id"])["status"] in ("running", "succeeded")
    assert cli("jobs", "cancel", running[0]["id"]).returncode == 0


def test_an_interactive_request_does_not_wait_behind_a_job(server_factory, tmp_path):
    server = server_factory([{"id": "echo", "architecture": "echo"}], env=ENV)  # one worker, one slot
    job_id = submit(server.client, make_pdf(tmp_path / "long.pdf", 60), {"sleep_s": 1.0}).json()["id"]
    wait_until(lambda: job(server.client, job_id)["pages_done"] >= 1, timeout=30)
    image = tmp_path / "page.png"
    Image.new("L", (64, 32), 255).save(image)
    for _ in range(3):
        before = job(server.client, job_id)["pages_done"]
        with open(image, "rb") as f:
            r = server.client.post("/v1/ocr", files={"file": ("page.png", f)}, data={"model": "echo"})
        after = job(server.client, job_id)["pages_done"]
        assert r.status_code == 200, r.text
        # It waited for the page on the worker at most, never for the job's other pages (a second page
        # may finish while the upload is checked, before the request reaches the model's queue).
        assert after - before <= 2, (before, after)
    metrics = server.client.get("/metrics").text
    assert 'venvserve_jobs{status="running"} 1.0' in metrics
    assert "venvserve_job_pages_total" in metrics and "venvserve_jobs_oldest_queued_seconds 0.0" in metrics
    server.client.delete(f"/v1/jobs/{job_id}")


def test_a_job_takes_several_files(echo, tmp_path):
    first, second = make_pdf(tmp_path / "a.pdf", 3), make_pdf(tmp_path / "b.pdf", 2)
    image = tmp_path / "c.png"
    Image.new("L", (77, HEIGHT), 255).save(image)
    with open(first, "rb") as a, open(second, "rb") as b, open(image, "rb") as c:
        r = echo.client.post("/v1/jobs", files=[("file", ("a.pdf", a)), ("file", ("b.pdf", b)),
                                                ("file", ("c.png", c))],
                             data={"model": "echo", "options": json.dumps({"dims": True})})
    assert r.status_code == 202, r.text
    assert [(f["name"], f["pages_total"]) for f in r.json()["files"]] == [("a.pdf", 3), ("b.pdf", 2), ("c.png", 1)]
    finished(echo.client, r.json()["id"])
    files = echo.client.get(f"/v1/jobs/{r.json()['id']}/result").json()["files"]
    assert [[p["text"] for p in f["pages"]] for f in files] == [
        [expected(1), expected(2), expected(3)], [expected(1), expected(2)], [f"77x{HEIGHT}"]]
    text = echo.client.get(f"/v1/jobs/{r.json()['id']}/result", params={"format": "text"}).text
    assert text.index("==> a.pdf <==") < text.index("==> b.pdf <==") < text.index("==> c.png <==")
