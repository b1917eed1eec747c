"""Prometheus metrics at ``GET /metrics``, in a registry of the app's own.

Counted as things happen: HTTP requests (by route, model, status), errors
(by route, model, error code), request latency, time queued for a worker and
time on it (by model), env builds and their durations, worker spawns, crashes,
failures and evictions: typed events the supervisor (``Supervisor.subscribe``)
and the env manager deliver.
Read at scrape time: queue depth per model, workers by state, model states and
the memory budget.

The registry belongs to the app, so several apps in one process (tests) never
clash.
"""


from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ..system import looplag
from . import requestlog

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
BUILD_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)
SPAWN_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)

router = APIRouter(tags=["operations"])

METRICS_EXAMPLE = """# HELP venvserve_requests_total HTTP requests answered, by route, model and status
# TYPE venvserve_requests_total counter
venvserve_requests_total{model="tesseract",route="/v1/ocr",status="200"} 12.0
# HELP venvserve_queue_depth Requests waiting for a worker, per model
# TYPE venvserve_queue_depth gauge
venvserve_queue_depth{model="tesseract"} 0.0
"""


@router.get("/metrics", summary="Prometheus metrics",
            description="Requests, errors and latency by model; queue depth; workers by state; env builds "
                        "and their durations; worker spawn times. Needs the API key when one is set.",
            response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"example": METRICS_EXAMPLE}},
                             "description": "Prometheus text exposition format"}})
async def metrics(request: Request):
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class Metrics:
    def __init__(self, gw=None):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("venvserve_requests", "HTTP requests answered, by route, model and status",
                                ["route", "model", "status"], registry=r)
        self.errors = Counter("venvserve_request_errors", "Error answers (status >= 400) by route, model "
                              "and error code", ["route", "model", "code"], registry=r)
        self.latency = Histogram("venvserve_request_duration_seconds", "Time to answer a request, by route "
                                 "and model", ["route", "model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("venvserve_queue_wait_seconds", "Time a call waited for a free worker, "
                                    "by model", ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.inference = Histogram("venvserve_inference_seconds", "Time a call spent on its worker, by model",
                                   ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.builds = Counter("venvserve_env_builds", "Env builds, by env and result (ok, failed)",
                              ["env", "result"], registry=r)
        self.build_seconds = Histogram("venvserve_env_build_duration_seconds", "Duration of env builds",
                                       ["env"], buckets=BUILD_BUCKETS, registry=r)
        self.spawn_seconds = Histogram("venvserve_worker_spawn_seconds", "Time from launching a worker to "
                                       "its model being ready", ["model"], buckets=SPAWN_BUCKETS, registry=r)
        self.worker_events = Counter("venvserve_worker_events", "Worker lifecycle events: spawned, crashed, "
                                     "failed (model marked failed), evicted (to make room)",
                                     ["model", "event"], registry=r)
        lag = Histogram("venvserve_event_loop_lag_seconds", "How late the gateway's event loop woke a 10 ms "
                        "sleep: its stalls", buckets=looplag.BUCKETS, registry=r)
        self.looplag = looplag.LoopLag(lag.observe)
        Gauge("venvserve_event_loop_lag_max_seconds", "The event loop's longest stall since start",
              registry=r).set_function(lambda: self.looplag.max_s)
        self._request_children: dict = {}  # (route, model, status) -> (counter, histogram) children
        self._model_children: dict = {}
        self.gw = None
        if gw is not None:
            self.attach(gw)

    # -- recording -----------------------------------------------------------

    def observe_request(self, route: str, model: str, status: int, code: str | None, seconds: float) -> None:
        self.looplag.ensure_running()  # on the loop, from the first request on
        key = (route, model, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(route, model, str(status)), self.latency.labels(route, model))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if code is not None:
            self.errors.labels(route, model, code).inc()

    def observe_call(self, model: str, queue_s: float, infer_s: float) -> None:
        children = self._model_children.get(model)
        if children is None:
            children = (self.queue_wait.labels(model), self.inference.labels(model))
            self._model_children[model] = children
        children[0].observe(queue_s)
        children[1].observe(infer_s)

    def on_build(self, name: str, seconds: float, ok: bool) -> None:
        self.builds.labels(name, "ok" if ok else "failed").inc()
        self.build_seconds.labels(name).observe(seconds)

    def on_event(self, event) -> None:
        """One typed supervisor event (workers/events.py): counted by its ``kind``."""
        kind, model = getattr(event, "kind", None), getattr(event, "model", None)
        if model is None or self.gw is None or self.gw.catalog.get(model) is None:
            return  # only catalog ids become labels
        if kind == "request":
            self._on_call(event)
            return
        self.worker_events.labels(model, kind).inc()
        if kind == "spawned" and getattr(event, "seconds", None) is not None:
            self.spawn_seconds.labels(model).observe(event.seconds)

    def _on_call(self, event) -> None:
        self.observe_call(event.model, event.queue_s, event.infer_s)
        record = requestlog.current()
        if record is not None:
            record.note(event.model, event.queue_s, event.infer_s,
                        getattr(event, "env_build_s", 0.0) or 0.0, getattr(event, "load_s", 0.0) or 0.0)

    # -- wiring ----------------------------------------------------------------

    def attach(self, gw) -> None:
        """Subscribe to the env manager and the supervisor; read gauges from them at scrape time."""
        self.gw = gw
        gw.supervisor.subscribe(self.on_event)
        gw.envs.subscribe(self.on_build)
        self.registry.register(StateCollector(gw))


class StateCollector:
    """Gauges read from the supervisor when Prometheus scrapes."""

    def __init__(self, gw):
        self.gw = gw

    def describe(self):
        return []

    def collect(self):
        sup = self.gw.supervisor
        queue = GaugeMetricFamily("venvserve_queue_depth", "Requests waiting for a free worker, per model",
                                  labels=["model"])
        models = GaugeMetricFamily("venvserve_model_state", "1 for each model's current state "
                                   "(unloaded, loading, loaded, failed)", labels=["model", "state"])
        for spec in self.gw.catalog:
            state = sup.model_state(spec.id)
            queue.add_metric([spec.id], state.get("queued") or 0)
            models.add_metric([spec.id, state.get("state", "unloaded")], 1)
        workers = GaugeMetricFamily("venvserve_workers", "Live workers by model and state",
                                    labels=["model", "state"])
        counts: dict = {}
        for w in sup.worker_views():
            counts[(w["model"], w["state"])] = counts.get((w["model"], w["state"]), 0) + 1
        for (model, state), n in sorted(counts.items()):
            workers.add_metric([model, state], n)
        budget = sup.budget_view()
        used = GaugeMetricFamily("venvserve_budget_used", "Resident estimate against the budget "
                                 "(memory_mb, gpu_memory_mb, models)", labels=["resource"])
        limit = GaugeMetricFamily("venvserve_budget_limit", "The budget (0 = no limit)", labels=["resource"])
        for resource, used_key, limit_key in (("memory_mb", "memory_used_mb", "memory_budget_mb"),
                                              ("gpu_memory_mb", "gpu_memory_used_mb", "gpu_memory_budget_mb"),
                                              ("models", "loaded_models", "max_loaded_models")):
            used.add_metric([resource], budget.get(used_key) or 0)
            limit.add_metric([resource], max(0, budget.get(limit_key) or 0))
        return [queue, models, workers, used, limit]
