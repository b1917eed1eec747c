"""The job store (SQLite) and the job state table, without a server."""

import sqlite3

import pytest

from venvserve.jobs.model import FINISHED, TRANSITIONS, IllegalTransition, JobStatus, advance, is_finished
from venvserve.jobs.results import document, per_file
from venvserve.jobs.store import JobStore

ALLOWED = {
    ("queued", "running"), ("queued", "cancelled"), ("queued", "failed"),
    ("running", "succeeded"), ("running", "failed"), ("running", "cancelled"),
}


@pytest.mark.parametrize("old", [s.value for s in JobStatus])
@pytest.mark.parametrize("new", [s.value for s in JobStatus])
def test_state_table_allows_only_the_documented_moves(old, new):
    if (old, new) in ALLOWED:
        assert advance(old, new) is JobStatus(new)
    else:
        with pytest.raises(IllegalTransition):
            advance(old, new)


def test_finished_states_are_the_ones_without_a_way_out():
    assert FINISHED == {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
    assert all(is_finished(s) == (not TRANSITIONS[s]) for s in JobStatus)


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "jobs.sqlite3")
    yield s
    s.close()


def make(store, job_id="a" * 32, pages=(3,), now=1000.0, size=10):
    files = [{"name": f"f{i}.pdf", "path": f"/x/{i}", "kind": "application/pdf", "size": size, "pages_total": n}
             for i, n in enumerate(pages)]
    store.create(job_id, "echo", "text", {"k": 1}, "/x", files, now=now)
    return job_id


def test_a_new_job_is_queued_with_every_page_pending(store):
    job = make(store, pages=(3, 2))
    view = store.view(job)
    assert view["status"] == "queued" and view["pages_total"] == 5 and view["pages_done"] == 0
    assert [f["pages_total"] for f in view["files"]] == [3, 2]
    assert store.pending_pages(job) == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2)]


def test_finished_pages_are_counted_and_kept_in_order(store):
    job = make(store)
    store.finish_page(job, 0, 3, {"text": "three"})
    store.finish_page(job, 0, 1, {"error": {"code": "worker_crashed", "message": "boom"}})
    view = store.view(job)
    assert view["pages_done"] == 2 and view["pages_failed"] == 1
    assert store.pending_pages(job) == [(0, 2)]
    assert store.page_results(job, 0) == [{"error": {"code": "worker_crashed", "message": "boom"}}, None,
                                          {"text": "three"}]


def test_what_was_committed_survives_reopening_the_database(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    first = JobStore(path)
    job = make(first)
    first.set_status(job, JobStatus.RUNNING)
    first.finish_page(job, 0, 1, {"text": "one"})
    # No close(): as after a SIGKILL, only what was committed is there.
    again = JobStore(path)
    assert again.view(job)["status"] == "running"
    assert again.pending_pages(job) == [(0, 2), (0, 3)]
    assert [r["id"] for r in again.unfinished()] == [job]
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_status_moves_follow_the_table_and_stamp_times(store):
    job = make(store)
    store.set_status(job, JobStatus.RUNNING, now=1001.0)
    store.set_status(job, JobStatus.SUCCEEDED, now=1002.0)
    view = store.view(job)
    assert view["started_at"].startswith("1970-01-01T00:16:41") and view["finished_at"]
    with pytest.raises(IllegalTransition):
        store.set_status(job, JobStatus.RUNNING)
    assert store.view(job)["status"] == "succeeded"


def test_a_failed_job_carries_its_error(store):
    job = make(store)
    store.set_status(job, JobStatus.FAILED, error={"code": "model_failed", "message": "gone"})
    assert store.view(job)["error"] == {"code": "model_failed", "message": "gone"}


def test_attempts_are_counted_per_page(store):
    job = make(store)
    assert [store.add_attempt(job, 0, 2) for _ in range(3)] == [1, 2, 3]
    assert store.add_attempt(job, 0, 1) == 1


def test_listing_is_newest_first_and_paged_by_cursor(store):
    ids = [make(store, job_id=f"{i:032x}", now=1000.0 + i) for i in range(5)]
    first, cursor = store.listing(limit=2)
    assert first == [ids[4], ids[3]] and cursor is not None
    second, cursor = store.listing(limit=2, cursor=cursor)
    assert second == [ids[2], ids[1]]
    third, cursor = store.listing(limit=2, cursor=cursor)
    assert third == [ids[0]] and cursor is None
    store.set_status(ids[1], JobStatus.CANCELLED)
    assert store.listing(status="cancelled")[0] == [ids[1]]


def test_delete_removes_the_job_its_files_and_pages(store):
    job = make(store)
    store.delete(job)
    assert store.view(job) is None
    for table in ("jobs", "files", "pages"):
        assert store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0


def test_expiry_quota_and_figures(store):
    old = make(store, job_id="1" * 32, now=10.0, size=5)
    new = make(store, job_id="2" * 32, now=20.0, size=7)
    assert store.unfinished_bytes() == 12 and store.oldest_queued() == 10.0
    store.set_status(old, JobStatus.CANCELLED, now=30.0)
    assert store.unfinished_bytes() == 7
    assert store.expired(before=31.0) == [old] and store.expired(before=29.0) == []
    assert store.counts_by_status()["queued"] == 1 and store.counts_by_status()["cancelled"] == 1
    assert new in [r["id"] for r in store.unfinished()]


def test_a_failed_create_leaves_nothing_behind(store):
    make(store)
    with pytest.raises(sqlite3.IntegrityError):
        make(store)  # same id
    assert store.db.execute("SELECT COUNT(*) FROM pages").fetchone()[0] == 3


def test_results_keep_page_order_and_errors():
    answer = per_file("a.pdf", "echo", "text", [{"text": "one"}, {"error": {"code": "x", "message": "m"}},
                                                {"text": "three"}])
    assert [p["page"] for p in answer["pages"]] == [1, 2, 3]
    assert answer["text"] == "one\n\nthree" and answer["pages"][1]["error"]["code"] == "x"
    assert per_file("a.pdf", "echo", "text", [{"text": "one"}, None])["pages"] == [{"page": 1, "text": "one"}]
    assert document([answer], "text") == "one\n\nthree\n"
    two = document([answer, {**answer, "name": "b.png", "text": "b"}], "markdown")
    assert two.startswith("# a.pdf\n\none") and "# b.png\n\nb" in two
