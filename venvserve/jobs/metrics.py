"""Job figures for ``/metrics``, read at scrape time from the store and the scheduler."""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class JobCollector:
    def __init__(self, gw):
        self.gw = gw

    def collect(self):
        jobs = getattr(self.gw, "jobs", None)
        if jobs is None:
            return
        figures = jobs.figures()
        by_status = GaugeMetricFamily("venvserve_jobs", "Jobs in the store, by status", labels=["status"])
        for status, count in figures["by_status"].items():
            by_status.add_metric([status], count)
        yield by_status
        yield CounterMetricFamily("venvserve_job_pages", "Job pages answered (done or failed for good) "
                                  "since the server started", value=figures["pages_done"])
        yield CounterMetricFamily("venvserve_job_page_retries", "Job pages tried again after a worker crash "
                                  "or timeout, since the server started", value=figures["page_retries"])
        yield GaugeMetricFamily("venvserve_jobs_oldest_queued_seconds", "Age of the oldest queued job "
                                "(0 when none waits)", value=round(figures["oldest_queued_s"], 3))

    def describe(self):
        return []
