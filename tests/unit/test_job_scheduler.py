"""The job scheduler against stand-ins for the pages and the supervisor: order, retries,
fairness below interactive requests, round robin, resume, cancel."""

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from venvserve.errors import Unavailable, WorkerCrashed
from venvserve.jobs.events import Events
from venvserve.jobs.model import MAX_PAGE_RETRIES
from venvserve.jobs.scheduler import Scheduler
from venvserve.jobs.store import JobStore


class FakePages:
    def __init__(self, crash=(), crash_once=(), fail_model=()):
        self.calls: list[tuple[str, int]] = []
        self.crash, self.crash_once, self.fail_model = set(crash), set(crash_once), set(fail_model)
        self.in_flight = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def render(self, path, kind, page, out_dir, model_id):
        assert model_id == "echo"  # each page renders at the dpi of its job's model
        return SimpleNamespace(number=page, job=path.name)

    async def ocr(self, model, page, fmt, options):
        self.calls.append((page.job, page.number))
        self.in_flight += 1
        try:
            await self.gate.wait()
            await asyncio.sleep(0.001)
        finally:
            self.in_flight -= 1
        if page.number in self.fail_model:
            raise Unavailable("model 'echo' failed", code="model_failed")
        if page.number in self.crash or (page.number, page.job) in self.crash_once:
            self.crash_once.discard((page.number, page.job))
            raise WorkerCrashed("the worker died")
        return {"text": f"{page.job} p{page.number}"}

    async def done(self, path, kind):
        pass


class FakeSupervisor:
    def __init__(self, pages):
        self.pages = pages
        self.queued = 0

    def model_state(self, model):
        return {"queued": self.queued, "in_flight": self.pages.in_flight}


def catalog(capacity):
    spec = SimpleNamespace(replicas=1, max_concurrency=capacity)
    return SimpleNamespace(get=lambda model: spec)


def add_job(store, tmp_path, name, pages):
    (tmp_path / name).mkdir(exist_ok=True)
    store.create(name, "echo", "text", {}, tmp_path / name,
                 [{"name": "doc.pdf", "path": tmp_path / name, "kind": "pdf", "size": 1, "pages_total": pages}])
    return name


async def settle(scheduler, store, *ids, timeout=5.0):
    async def finished():
        while any(store.view(i)["status"] in ("queued", "running") for i in ids):
            await asyncio.sleep(0.005)
    await asyncio.wait_for(finished(), timeout)


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "jobs.sqlite3")
    yield s
    s.close()


def run(coro):
    return asyncio.run(coro)


def make(store, pages, capacity=2):
    return Scheduler(store, pages, FakeSupervisor(pages), catalog(capacity), Events())


def test_every_page_is_run_once_and_answered_in_order(store, tmp_path):
    async def main():
        pages = FakePages()
        s = make(store, pages)
        job = add_job(store, tmp_path, "a", 12)
        s.start()
        await settle(s, store, job)
        await s.stop()
        return pages, job
    pages, job = run(main())
    assert sorted(pages.calls) == [("a", n) for n in range(1, 13)]
    assert store.view(job)["status"] == "succeeded" and store.view(job)["pages_done"] == 12
    assert [r["text"] for r in store.page_results(job, 0)] == [f"a p{n}" for n in range(1, 13)]
    assert not (tmp_path / "a").exists()  # the job's files go when it ends


def test_a_crash_is_retried_and_a_page_that_always_crashes_fails_alone(store, tmp_path):
    async def main():
        pages = FakePages(crash={5}, crash_once={(2, "a")})
        s = make(store, pages)
        job = add_job(store, tmp_path, "a", 6)
        s.start()
        await settle(s, store, job)
        await s.stop()
        return pages, s, job
    pages, s, job = run(main())
    results = store.page_results(job, 0)
    assert results[1] == {"text": "a p2"} and pages.calls.count(("a", 2)) == 2
    assert results[4]["error"]["code"] == "worker_crashed"
    assert pages.calls.count(("a", 5)) == 1 + MAX_PAGE_RETRIES
    view = store.view(job)
    assert view["status"] == "succeeded" and view["pages_failed"] == 1
    assert s.page_retries == 1 + 1 + MAX_PAGE_RETRIES


def test_a_failed_model_fails_the_job(store, tmp_path):
    async def main():
        pages = FakePages(fail_model={1})
        s = make(store, pages, capacity=1)
        job = add_job(store, tmp_path, "a", 3)
        s.start()
        await settle(s, store, job)
        await s.stop()
        return job
    job = run(main())
    assert store.view(job)["status"] == "failed" and store.view(job)["error"]["code"] == "model_failed"


def test_no_page_is_sent_while_an_interactive_request_waits(store, tmp_path):
    async def main():
        pages = FakePages()
        s = make(store, pages)
        s.supervisor.queued = 1
        job = add_job(store, tmp_path, "a", 4)
        s.start()
        await asyncio.sleep(0.3)
        held = list(pages.calls)
        s.supervisor.queued = 0
        await settle(s, store, job)
        await s.stop()
        return held, job
    held, job = run(main())
    assert held == [] and store.view(job)["status"] == "succeeded"


def test_jobs_of_one_model_take_turns_page_by_page(store, tmp_path):
    async def main():
        pages = FakePages()
        s = make(store, pages, capacity=1)
        a, b = add_job(store, tmp_path, "a", 4), add_job(store, tmp_path, "b", 4)
        s.start()
        await settle(s, store, a, b)
        await s.stop()
        return pages.calls
    calls = run(main())
    assert [job for job, _ in calls] == ["a", "b"] * 4


def test_a_restart_runs_only_the_pages_without_an_answer(store, tmp_path):
    job = add_job(store, tmp_path, "a", 5)
    store.finish_page(job, 0, 1, {"text": "kept 1"})
    store.finish_page(job, 0, 3, {"text": "kept 3"})

    async def main():
        pages = FakePages()
        s = make(store, pages)
        s.start()
        await settle(s, store, job)
        await s.stop()
        return pages.calls
    calls = run(main())
    assert sorted(calls) == [("a", 2), ("a", 4), ("a", 5)]
    assert [r["text"] for r in store.page_results(job, 0)] == ["kept 1", "a p2", "kept 3", "a p4", "a p5"]


def test_cancel_stops_feeding_at_once(store, tmp_path):
    async def main():
        pages = FakePages()
        pages.gate.clear()  # pages hang on their worker
        s = make(store, pages)
        job = add_job(store, tmp_path, "a", 50)
        s.start()
        while len(pages.calls) < 2:
            await asyncio.sleep(0.005)
        s.cancel(job)
        pages.gate.set()
        await asyncio.sleep(0.2)
        await s.stop()
        return pages.calls, job
    calls, job = run(main())
    assert len(calls) == 2 and store.view(job)["status"] == "cancelled"
    assert store.view(job)["pages_done"] == 0


def test_a_job_whose_model_left_the_catalog_fails(store, tmp_path):
    async def main():
        pages = FakePages()
        s = Scheduler(store, pages, FakeSupervisor(pages), SimpleNamespace(get=lambda model: None), Events())
        job = add_job(store, tmp_path, "a", 2)
        s.start()
        await settle(s, store, job)
        await s.stop()
        return job, pages.calls
    job, calls = run(main())
    assert calls == [] and store.view(job)["error"]["code"] == "model_not_found"
