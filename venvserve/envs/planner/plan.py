"""The Planner: every pair of templates locked together with uv (verdicts
cached by the hash of the joint project), then the fewest envs, each group
locked as a whole to confirm it."""

import concurrent.futures
import hashlib
import itertools
import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .. import venvinfo
from . import files, pypi, sizes
from .project import clashing_packages, joint_project, uv_explanation
from .pythons import allowed_minors, describe_minors, upper_bound
from .solver import clique_cover
from .templates import TemplateInfo, load_template, lock_packages

CACHE_VERSION = "1"


@dataclass
class Verdict:
    """Whether some templates can share one env, and the evidence."""
    members: list[str]
    ok: bool
    conflicts: list[dict] = field(default_factory=list)  # {"kind", "packages", "detail"}
    notes: list[str] = field(default_factory=list)
    packages: int = 0
    size_bytes: int = 0  # on disk: measured for a built env, else estimated (see sizes.py)
    measured: bool = False
    cached: bool = False
    seconds: float = 0.0


class Planner:
    def __init__(self, templates_dir: Path, data_dir: Path, uv: str, timeout_s: float = 120.0,
                 use_cache: bool = True, ready_envs: dict[str, Path] | None = None, offline_index: bool = False):
        self.templates_dir = Path(templates_dir)
        self.cache_dir = Path(data_dir) / "cache" / "planner"
        self.uv = uv
        self.timeout_s = timeout_s
        self.use_cache = use_cache
        self.ready_envs = ready_envs or {}
        self.offline_index = offline_index
        self._uv_version: str | None = None
        self._files: dict[str, dict] = {}
        self._reasons: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- cache ----------------------------------------------------------------

    def uv_version(self) -> str:
        if self._uv_version is None:
            try:
                self._uv_version = subprocess.run([self.uv, "--version"], capture_output=True, text=True,
                                                  timeout=30).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                self._uv_version = "uv"
        return self._uv_version

    def _cache_get(self, key: str):
        if not self.use_cache:
            return None
        try:
            return json.loads((self.cache_dir / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None

    def _cache_put(self, key: str, value) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_dir / f"{key}.json.tmp{os.getpid()}-{threading.get_ident()}"
        tmp.write_text(json.dumps(value))
        os.replace(tmp, self.cache_dir / f"{key}.json")

    # -- one joint resolution ---------------------------------------------------

    def check(self, templates: list[TemplateInfo]) -> Verdict:
        t0 = time.monotonic()
        verdict = Verdict([t.name for t in templates], True)
        minors = [allowed_minors(t.requires_python) for t in templates]
        joint = set.intersection(*minors)
        if not joint:
            verdict.ok = False
            needs = [f"{t.name} needs Python {t.requires_python} ({describe_minors(m)})"
                     for t, m in zip(templates, minors)]
            verdict.conflicts.append({"kind": "python", "packages": [], "detail": "; ".join(needs)})
            verdict.seconds = time.monotonic() - t0
            return verdict
        narrowed = [t for t, m in zip(templates, minors) if joint != m]
        if narrowed:
            cappers = [t for t in templates if t not in narrowed] or templates
            reasons = [self.python_bound_reason(t) if upper_bound(t.requires_python)
                       else f"{t.name} requires Python {t.requires_python}" for t in cappers]
            verdict.notes.append(f"one env would be limited to Python {describe_minors(joint)} "
                                 f"(narrower for {', '.join(t.name for t in narrowed)}): " + "; ".join(reasons))
        project = joint_project(templates)
        key = hashlib.sha256("\0".join([CACHE_VERSION, self.uv_version(), project]).encode()).hexdigest()[:24]
        result = self._cache_get(key)
        if result is None:
            result = self._uv_lock(project)
            if result.get("final"):
                self._cache_put(key, result)
        else:
            verdict.cached = True
        if not result["ok"]:
            verdict.ok = False
            clash = clashing_packages("\n".join(result["explanation"]))
            detail = "; ".join(f"{name} {' vs '.join(cs)}" for name, cs in clash.items())
            verdict.conflicts.append({"kind": "resolution" if result.get("final") else "error",
                                      "packages": sorted(clash),
                                      "detail": detail or (result["explanation"] or ["uv lock failed"])[-1].strip(),
                                      "uv": result["explanation"]})
        else:
            verdict.packages = len(result["packages"])
            verdict.size_bytes = self._estimate(result.get("lock"), result.get("size_bytes", 0))
            for module, dists in self.module_clashes(templates, set(result["packages"])).items():
                verdict.ok = False
                owners = ", ".join(f"{d} ({', '.join(self.brought_by(templates, d)) or 'transitive'})" for d in dists)
                verdict.conflicts.append({"kind": "module", "packages": list(dists),
                                          "detail": f"module {module} is installed by {owners}"})
        verdict.seconds = time.monotonic() - t0
        return verdict

    def _uv_lock(self, project: str) -> dict:
        with tempfile.TemporaryDirectory(prefix="venvserve-plan-") as tmp:
            (Path(tmp) / "pyproject.toml").write_text(project)
            env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
            env["UV_NO_PROGRESS"] = "1"
            try:
                proc = subprocess.run([self.uv, "lock", "--project", tmp], capture_output=True, text=True,
                                      timeout=self.timeout_s, env=env, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return {"ok": False, "final": False,
                        "explanation": [f"uv lock did not finish within {self.timeout_s:.0f}s (is PyPI reachable?)"]}
            output = proc.stderr + proc.stdout
            if proc.returncode != 0:
                # "No solution found" is a verdict; a network or build error is not (never cached).
                final = "No solution found" in output or "unsatisfiable" in output
                return {"ok": False, "final": final, "explanation": uv_explanation(output)}
            lockfile = Path(tmp) / "uv.lock"
            return {"ok": True, "final": True, "packages": sorted(lock_packages(lockfile)),
                    "size_bytes": sizes.estimate_size(lockfile), "lock": lockfile.read_text(),
                    "explanation": []}

    # -- sizes -------------------------------------------------------------------

    def _known_sizes(self) -> tuple[dict[tuple[str, str], int], float | None]:
        """Installed bytes per (distribution, version) in the built envs, and their disk/wheel ratio."""
        with self._lock:
            if "sizes" in self._files:
                return self._files["sizes"]
        known: dict[tuple[str, str], int] = {}
        disk = wheels = 0
        for name, venv in self.ready_envs.items():
            versions = venvinfo.packages(venv)
            here: dict[tuple[str, str], int] = {}
            for _path, (_digest, dist, size) in self.installed_files(name).items():
                key = (dist, versions.get(dist, ""))
                here[key] = here.get(key, 0) + size
            for dist, (version, size) in sizes.wheel_sizes(self.templates_dir / name / "uv.lock").items():
                if size and here.get((dist, version)):
                    disk, wheels = disk + here[(dist, version)], wheels + size
            known.update(here)
        answer = (known, disk / wheels if wheels else None)
        with self._lock:
            self._files["sizes"] = answer
        return answer

    def _estimate(self, lock_text: str | None, wheel_bytes: int) -> int:
        if not lock_text:
            return int(wheel_bytes * sizes.WHEEL_TO_DISK)
        with tempfile.TemporaryDirectory(prefix="venvserve-plan-") as tmp:
            lockfile = Path(tmp) / "uv.lock"
            lockfile.write_text(lock_text)
            return sizes.installed_estimate(lockfile, *self._known_sizes())

    def size_of(self, t: TemplateInfo) -> tuple[int, bool]:
        """(bytes, measured): a built env as `envs list` measures it, else the estimate from its lock."""
        venv = self.ready_envs.get(t.name)
        if venv is not None:
            return venvinfo.size_bytes(venv), True
        return sizes.installed_estimate(t.path / "uv.lock", *self._known_sizes()), False

    # -- file-level clashes -----------------------------------------------------

    def module_clashes(self, templates: list[TemplateInfo], packages: set[str]) -> dict[str, tuple[str, ...]]:
        return files.module_clashes(templates, packages, self.installed_files)

    def installed_files(self, env: str) -> dict:
        """path → (hash, distribution, size) from the RECORD files of a built env of ``env``."""
        with self._lock:
            if env not in self._files:
                self._files[env] = files.installed_files(self.ready_envs.get(env))
            return self._files[env]

    @staticmethod
    def brought_by(templates: list[TemplateInfo], dist: str) -> list[str]:
        return [t.name for t in templates if dist in t.direct or dist in t.locked()]

    # -- why a template has an upper Python bound ------------------------------------

    def python_bound_reason(self, t: TemplateInfo) -> str:
        with self._lock:  # one lookup per template, however many pairs ask
            known = self._reasons.get(t.name)
        if known is None:
            known = self._python_bound_reason(t)
            with self._lock:
                self._reasons[t.name] = known
        return known

    def _python_bound_reason(self, t: TemplateInfo) -> str:
        locked = t.locked()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            found = list(pool.map(lambda d: (d, self.requires_python_of(d, (locked.get(d) or [None])[0])),
                                  sorted(t.direct)))
        own_max = max(allowed_minors(t.requires_python) or {0})
        declared = []
        for dist, spec in found:
            # Only the declarations at least as tight as the template's bound explain it.
            if spec and upper_bound(spec) and max(allowed_minors(spec) or {0}) <= own_max:
                version = (locked.get(dist) or ["?"])[0]
                declared.append(f"{dist} {version} declares Requires-Python {spec}")
        why = f" ({'; '.join(declared)})" if declared else " (the template's own bound)"
        return f"{t.name} requires Python {t.requires_python}{why}"

    def requires_python_of(self, dist: str, version: str | None) -> str | None:
        """Requires-Python of a release, from PyPI's simple index, cached; None if unknown."""
        if not version or self.offline_index:
            return None
        key = hashlib.sha256(f"rp\0{dist}\0{version}".encode()).hexdigest()[:24]
        cached = self._cache_get(key)
        if cached is not None:
            return cached.get("requires_python")
        answered, spec = pypi.requires_python(dist, version)
        if answered:
            self._cache_put(key, {"requires_python": spec})
        return spec

    # -- the plan ---------------------------------------------------------------

    def plan(self, names: list[str], workers: int = 4,
             on_pair: Callable[[int, int], None] | None = None) -> dict:
        """The proposal; ``on_pair(done, total)`` after each pair is resolved."""
        t0 = time.monotonic()
        templates = {n: load_template(self.templates_dir / n) for n in names}
        pairs = list(itertools.combinations(names, 2))
        done = itertools.count(1)

        def check_pair(pair):
            verdict = self.check([templates[pair[0]], templates[pair[1]]])
            if on_pair:
                on_pair(next(done), len(pairs))
            return verdict

        with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
            verdicts = dict(zip(pairs, pool.map(check_pair, pairs)))
        compatible = {p for p, v in verdicts.items() if v.ok}
        groups = self._confirmed_cover(names, compatible, templates)
        return {
            "templates": names,
            "envs": [asdict(g) for g in groups],
            "pairs": [asdict(v) for v in verdicts.values()],
            "conflicts": [asdict(v) for v in verdicts.values() if not v.ok],
            "seconds": round(time.monotonic() - t0, 2),
            "resolved": sum(not v.cached for v in verdicts.values()),
            "cached": sum(v.cached for v in verdicts.values()),
        }

    def _confirmed_cover(self, names, compatible, templates) -> list[Verdict]:
        forbidden: list[frozenset] = []
        while True:
            confirmed, failed = [], None
            for group in clique_cover(names, compatible, forbidden):
                if len(group) == 1:
                    t = templates[group[0]]
                    size, measured = self.size_of(t)
                    confirmed.append(Verdict(group, True, packages=len(t.locked()), size_bytes=size,
                                             measured=measured))
                    continue
                verdict = self.check([templates[n] for n in group])
                if not verdict.ok:
                    failed = frozenset(group)
                    break
                alone = {n: self.size_of(templates[n])[0] for n in group}
                small = [n for n, size in alone.items() if size and verdict.size_bytes > 4 * size]
                if small:
                    verdict.notes.append("grows " + ", ".join(
                        f"{n} from ≈{sizes.human_size(alone[n])} alone" for n in small)
                        + f" to ≈{sizes.human_size(verdict.size_bytes)} together")
                confirmed.append(verdict)
            if failed is None:
                return confirmed
            forbidden.append(failed)  # pairwise fine, jointly not: never group these together
