"""Build the Ray Serve application from a catalog.

One Serve deployment per model plus the ingress:

- ``num_replicas`` ← ``replicas``; ``max_ongoing_requests`` ← ``max_concurrency``;
  ``max_queued_requests`` ← ``max_queue`` (else settings' ``max_queue``);
  ``num_gpus`` ← ``device`` (``cuda``: ``gpus_per_replica``, default 1);
  ``memory`` ← ``memory_mb`` (a scheduling reservation, not a limit).
- The replica's ``runtime_env`` recreates the model's env on each node:

  * ``python_env: NAME`` → ``working_dir`` = a *derived project*: the
    template's ``pyproject.toml`` + ``uv.lock`` with ``ray[serve]==<the
    cluster's version>`` added for the cluster's Python (``uv add``, which keeps
    every locked version as it is, and refuses the deploy if it cannot), and
    ``py_executable = "uv run --frozen --no-python-downloads --python X.Y.Z python"``:
    Ray starts the replica's worker through ``uv run`` in that folder, so each
    node syncs exactly the locked env (from its uv cache) and the replica runs
    on that env's interpreter.
  * ``python: /path/bin/python`` → ``py_executable`` = that interpreter
    (it must have the cluster's ``ray[serve]`` installed).
  * neither → the cluster's own Python (like the gateway's own interpreter).

  Every runtime_env ships the stdlib worker runtime and its backends
  (``worker_runtime/venvserve_worker``) and this package through
  ``py_modules``, so replicas import the very backend classes the gateway's
  workers use.

Entry points: ``python -m venvserve.ray deploy --catalog models.json`` and
``serve run venvserve.ray.deploy:app`` (or ``...:app_builder catalog=PATH models=a,b``).
"""

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..availability import SYSTEM_BINARIES
from ..catalog import Catalog, ModelSpec, load_catalog
from ..errors import VenvserveError
from ..names import slug
from ..settings import Settings

log = logging.getLogger("venvserve.ray")

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # venvserve/
EXCLUDES = ["__pycache__", "*.pyc", ".venv", ".git"]
INGRESS_NAME = "venvserve-ingress"
UV_ADD_TIMEOUT_S = 600


class DeployError(VenvserveError):
    status, code = 500, "deploy_failed"


def worker_runtime_dir() -> Path:
    """The folder of the stdlib worker package ``venvserve_worker`` (shipped with py_modules)."""
    import venvserve_worker

    return Path(venvserve_worker.__file__).resolve().parent


def deployment_name(model_id: str) -> str:
    return "model-" + slug(model_id)


@dataclass
class Plan:
    """What a deploy will do: kept so that the CLI can print it and tests can inspect it."""

    deployed: dict[str, dict] = field(default_factory=dict)  # model id -> deployment options
    skipped: dict[str, str] = field(default_factory=dict)  # model id -> reason


# -- the model's env on Ray --------------------------------------------------------


def _ray_version() -> str:
    import ray

    return ray.__version__


def ray_requirement(python: tuple[int, int]) -> str:
    """What the model env needs so that Ray can run a worker in it: this very Ray."""
    override = os.environ.get("VENVSERVE_RAY_REQUIREMENT")
    requirement = override or f"ray[serve]=={_ray_version()}"
    return f"{requirement} ; python_version == '{python[0]}.{python[1]}'"


def _lock_versions(lock: Path) -> dict[str, set[str]]:
    import tomllib

    versions: dict[str, set[str]] = {}
    for package in tomllib.loads(lock.read_text()).get("package", []):
        if "version" in package:
            versions.setdefault(package["name"], set()).add(package["version"])
    return versions


def prepare_env_project(name: str, template: Path, cache_root: Path, python: tuple[int, int],
                        uv: str | None = None) -> Path:
    """The template plus Ray, locked, in ``cache_root/NAME-<hash>/`` (built once, then reused).

    ``uv add`` re-locks with the template's ``uv.lock`` as preferences; any
    locked version that moves is an error, not a silent change of the model's env.
    """
    from ..envs.manager import uv_binary

    pyproject, lock = template / "pyproject.toml", template / "uv.lock"
    if not pyproject.is_file() or not lock.is_file():
        raise DeployError(f"env template {template} needs pyproject.toml and uv.lock",
                          hint=f"uv lock --project {template}")
    if (template / "post_install.sh").is_file():
        log.warning("env %s: post_install.sh is not run on Ray nodes; bake what it does into the node image", name)
    requirement = ray_requirement(python)
    digest = hashlib.sha256()
    for part in (pyproject.read_bytes(), lock.read_bytes(), requirement.encode()):
        digest.update(part + b"\0")
    target = cache_root / f"{name}-{digest.hexdigest()[:16]}"
    if (target / ".venvserve-ready").is_file():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_root))
    try:
        shutil.copy2(pyproject, work / "pyproject.toml")
        shutil.copy2(lock, work / "uv.lock")
        cmd = [uv or uv_binary(), "add", "--no-sync", "--project", str(work), requirement]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=UV_ADD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DeployError(f"env {name}: `uv add {requirement}` took over {UV_ADD_TIMEOUT_S}s") from None
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise DeployError(f"env {name}: Ray cannot be added to its lock ({' '.join(cmd[1:])}):\n{tail}",
                              hint="pin versions in the template that Ray's dependencies accept")
        before, after = _lock_versions(lock), _lock_versions(work / "uv.lock")
        moved = {pkg: (sorted(v), sorted(after.get(pkg, ()))) for pkg, v in before.items()
                 if not v <= after.get(pkg, set())}
        if moved:
            detail = ", ".join(f"{p} {a} -> {b}" for p, (a, b) in sorted(moved.items()))
            raise DeployError(f"env {name}: adding {requirement} would change locked versions: {detail}",
                              hint="relock the template with versions Ray accepts")
        (work / ".venvserve-ready").write_text(requirement + "\n")
        try:
            work.rename(target)
        except OSError:  # another deploy got there first: theirs is identical
            pass
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cache_env_vars(root: str) -> dict[str, str]:
    """Model caches under ``root`` on every node, laid out like the gateway's
    ``DATA/cache/`` (so a node can mount or copy a gateway's data dir cache)."""
    return {"HF_HOME": f"{root}/huggingface", "MODELSCOPE_CACHE": f"{root}/modelscope",
            "PADDLE_PDX_CACHE_HOME": f"{root}/paddlex"}


def uv_run_executable(python: tuple[int, int, int]) -> str:
    uv = os.environ.get("VENVSERVE_RAY_UV", "uv")
    interpreter = os.environ.get("VENVSERVE_RAY_PYTHON", "%d.%d.%d" % python)
    return f"{uv} run --frozen --no-python-downloads --python {interpreter} python"


def upload(env: dict) -> dict:
    """Local folders → ``gcs://`` package URIs, as ``ray.init(runtime_env=...)`` does.

    Serve accepts only URIs in a deployment's runtime_env (its controller may
    run on another node than this driver), so the folders are packed and put
    into the cluster's GCS here; every node fetches them from there once.
    These are Ray's own helpers (the ones ``ray.init`` and job submission use).
    """
    import ray
    from ray._private.runtime_env.py_modules import upload_py_modules_if_needed
    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

    if not ray.is_initialized():
        ray.init()
    env = upload_py_modules_if_needed(dict(env), include_gitignore=False)
    env = upload_working_dir_if_needed(env, include_gitignore=False)
    env.pop("excludes", None)
    return env


def runtime_env_for(spec: ModelSpec, templates_dir: Path, cache_root: Path,
                    python: tuple[int, int, int] = tuple(sys.version_info[:3]), pack: bool = True,
                    model_cache: str | None = None) -> dict:
    env_vars = {"VENVSERVE_MODEL": spec.id, "ORT_DISABLE_TELEMETRY": "1"}
    if model_cache:
        env_vars.update(cache_env_vars(model_cache))
    env: dict = {
        "py_modules": [str(PACKAGE_DIR), str(worker_runtime_dir())],
        "excludes": list(EXCLUDES),
        "env_vars": env_vars,
    }
    if spec.python:
        env["py_executable"] = spec.python
    elif spec.python_env:
        template = templates_dir / spec.python_env
        project = prepare_env_project(spec.python_env, template, cache_root, python[:2])
        env["working_dir"] = str(project)
        env["py_executable"] = uv_run_executable(python)
    return upload(env) if pack else env


# -- the application -------------------------------------------------------------


def why_not(spec: ModelSpec, templates_dir: Path, gpus: float | None) -> str | None:
    need = SYSTEM_BINARIES.get(spec.architecture)
    if need and not shutil.which(need[0]):
        return f"the `{need[0]}` binary is not on this node's PATH; {need[1]} (on every Ray node)"
    if spec.device == "cuda" and gpus is not None and gpus < 1:
        return "needs a CUDA GPU and the Ray cluster has none"
    if spec.python_env and not (templates_dir / spec.python_env / "pyproject.toml").is_file():
        return f"env template {templates_dir / spec.python_env} does not exist"
    return None


def cluster_gpus() -> float | None:
    try:
        import ray

        if ray.is_initialized():
            return float(ray.cluster_resources().get("GPU", 0))
    except Exception:
        pass
    return None


def build_app(catalog: Catalog | Path | str | None = None, models: list[str] | None = None,
              settings: Settings | None = None, app_name: str = "venvserve",
              cpus_per_replica: float = 1.0, gpus_per_replica: float = 1.0,
              ingress_replicas: int = 1, ingress_cpus: float = 0.0, pack: bool = True,
              model_cache: str | None = None):
    """The Serve application for ``catalog`` → (Application, Plan).

    ``models``: the ids to deploy (default: every model this cluster can run;
    the rest stay listed in ``/v1/models`` with ``available: false`` and why).
    ``model_cache``: a folder on every node (node-local disk or a shared
    mount) for downloaded weights; default: each library's own default.
    ``pack=False`` leaves local folders in the runtime_envs (to print a plan
    without a cluster); Serve itself only takes them packed.
    """
    from ray import serve

    from .ingress import Ingress
    from .replica import ModelReplica

    settings = settings or Settings.load()
    if not isinstance(catalog, Catalog):
        catalog = load_catalog(Path(catalog or settings.catalog), settings.default_model)
    templates_dir = Path(settings.envs_dir or Path(catalog.path or settings.catalog).resolve().parent / "envs")
    cache_root = settings.data_dir / "ray" / "projects"
    gpus = cluster_gpus()
    plan = Plan()
    unknown = [m for m in models or () if catalog.get(m) is None]
    if unknown:
        raise DeployError(f"unknown model(s) {', '.join(unknown)} in {catalog.path}", code="model_not_found")
    handles = {}
    for spec in catalog:
        if models is not None and spec.id not in models:
            plan.skipped[spec.id] = "not selected for this deployment (--models)"
            continue
        reason = why_not(spec, templates_dir, gpus)
        if reason and models is None:
            plan.skipped[spec.id] = reason
            log.warning("not deploying %s: %s", spec.id, reason)
            continue
        try:
            runtime_env = runtime_env_for(spec, templates_dir, cache_root, pack=pack, model_cache=model_cache)
        except DeployError as exc:
            if models is not None:  # asked for by name: say why it cannot be deployed
                raise
            plan.skipped[spec.id] = exc.message
            log.warning("not deploying %s: %s", spec.id, exc.message)
            continue
        actor = {"num_cpus": cpus_per_replica, "runtime_env": runtime_env}
        if spec.device == "cuda":
            actor["num_gpus"] = gpus_per_replica
        if spec.memory_mb:
            actor["memory"] = spec.memory_mb * 2**20
        options = {
            "name": deployment_name(spec.id), "num_replicas": spec.replicas,
            "max_ongoing_requests": spec.max_concurrency,
            # Serve counts the queue per caller (each ingress replica) and takes no 0.
            "max_queued_requests": max(1, spec.max_queue if spec.max_queue is not None else settings.max_queue),
            "ray_actor_options": actor,
        }
        plan.deployed[spec.id] = options
        handles[spec.id] = serve.deployment(ModelReplica).options(**options).bind(
            spec.id, spec.architecture, spec.options, spec.max_concurrency)
    config = {
        "app_name": app_name,
        "models": [spec.model_dump() for spec in catalog],
        "default": catalog.default,
        "deployed": {m: o["name"] for m, o in plan.deployed.items()},
        "skipped": plan.skipped,
        "settings": {"max_upload_mb": settings.max_upload_mb, "request_timeout_s": settings.request_timeout_s,
                     "pdf_dpi": settings.pdf_dpi, "max_pdf_pages": settings.max_pdf_pages,
                     "decoders": settings.decoders, "decoder_memory_mb": settings.decoder_memory_mb,
                     "decoder_cpu_s": settings.decoder_cpu_s, "decoder_timeout_s": settings.decoder_timeout_s,
                     "max_page_pixels": settings.max_page_pixels},
    }
    ingress_env = {"py_modules": [str(PACKAGE_DIR), str(worker_runtime_dir())], "excludes": list(EXCLUDES)}
    ingress = serve.deployment(Ingress).options(
        name=INGRESS_NAME, num_replicas=ingress_replicas, max_ongoing_requests=1024,
        ray_actor_options={"num_cpus": ingress_cpus,
                           "runtime_env": upload(ingress_env) if pack else ingress_env},
    )
    return ingress.bind(config, handles), plan


def _split(value) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def app_builder(args: dict):
    """``serve run venvserve.ray.deploy:app_builder catalog=models.json models=echo,rapidocr``."""
    overrides = {k: args[k] for k in ("catalog", "envs_dir", "data_dir") if args.get(k)}
    app, _ = build_app(models=_split(args.get("models")), settings=Settings.load(**overrides),
                       cpus_per_replica=float(args.get("cpus_per_replica", 1.0)),
                       model_cache=args.get("model_cache") or os.environ.get("VENVSERVE_RAY_MODEL_CACHE"))
    return app


def __getattr__(name):
    # ``serve run venvserve.ray.deploy:app``: the default catalog (VENVSERVE_CATALOG,
    # VENVSERVE_ENVS_DIR, VENVSERVE_DATA_DIR; VENVSERVE_RAY_MODELS selects models).
    if name == "app":
        return app_builder({"models": os.environ.get("VENVSERVE_RAY_MODELS")})
    raise AttributeError(name)
