"""The env planner: which env templates could share one environment?

`venvserve envs plan` turns the rule "add an env only for a hard conflict"
into evidence. For every pair of templates it asks uv to resolve their
requirements together (a throw-away project joining both templates'
dependencies and Python bounds, locked for Linux x86_64), then looks for the
conflicts a resolver does not see:

- **resolution**: uv finds no solution; the packages whose constraints clash
  are read from uv's explanation (``transformers==4.47.1`` against
  ``transformers>=4.56``).
- **module**: the joint lock holds two distributions that install the same
  top-level module (``opencv-python`` and ``opencv-python-headless`` both
  install ``cv2``; uv resolves them together happily and the second install
  overwrites the first). Known from a table, and from the RECORD files of
  envs already built in the data dir (two distributions writing the same file
  with different contents).
- **python**: the templates' ``requires-python`` ranges do not overlap.
  Where they overlap but one is narrower, the plan notes it (merging would cap
  the others too) and names the dependencies that declare the bound
  (``rapidocr_onnxruntime`` 1.4.4: ``Requires-Python <3.13``), read from PyPI's
  simple index.

The proposal is the fewest groups of pairwise-compatible templates (an exact
clique cover; the template count is small), each group then locked as a
whole to confirm it. Every uv verdict is cached in the data dir by the hash
of the joint project, so a second run is offline and instant.
"""

import concurrent.futures
import hashlib
import itertools
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import tomllib
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

PLATFORM = "sys_platform == 'linux' and platform_machine == 'x86_64'"
CACHE_VERSION = "1"
PYTHON_MINORS = range(8, 16)  # 3.8 .. 3.15: the candidates for a Python bound

# Distributions that install the same top-level module: two of one row in one
# env overwrite each other's files, which no resolver notices.
MODULE_OWNERS = {
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
    "rapidocr": ("rapidocr", "rapidocrlite"),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
                    "onnxruntime-silicon"),
    "paddle": ("paddlepaddle", "paddlepaddle-gpu"),
    "PIL": ("pillow", "pillow-simd"),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel"),
    "fitz": ("pymupdf", "fitz"),
    "jwt": ("pyjwt", "jwt"),
    "magic": ("python-magic", "filemagic"),
    "serial": ("pyserial", "serial"),
    "bson": ("pymongo", "bson"),
    "faiss": ("faiss-cpu", "faiss-gpu"),
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return canonical(match.group(1)) if match else req


# -- templates ----------------------------------------------------------------

@dataclass
class TemplateInfo:
    name: str
    path: Path
    dependencies: list[str]
    requires_python: str | None
    uv: dict = field(default_factory=dict)

    @property
    def direct(self) -> set[str]:
        return {requirement_name(r) for r in self.dependencies}

    def locked(self) -> dict[str, list[str]]:
        """Package name → versions in the template's own uv.lock ({} without a lock)."""
        return lock_packages(self.path / "uv.lock")


def load_template(path: Path) -> TemplateInfo:
    data = tomllib.loads((path / "pyproject.toml").read_text())
    project = data.get("project", {})
    return TemplateInfo(path.name, path, list(project.get("dependencies", [])),
                        project.get("requires-python"), data.get("tool", {}).get("uv", {}))


def lock_packages(lockfile: Path) -> dict[str, list[str]]:
    try:
        data = tomllib.loads(lockfile.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    out: dict[str, list[str]] = {}
    for pkg in data.get("package", []):
        if "virtual" in pkg.get("source", {}) or "editable" in pkg.get("source", {}):
            continue
        out.setdefault(canonical(pkg["name"]), []).append(str(pkg.get("version", "")))
    return out


# -- Python bounds --------------------------------------------------------------

def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _satisfies(v: tuple[int, int, int], op: str, ver: str) -> bool:
    wildcard = ver.endswith(".*")
    bound = _version(ver)
    padded = bound + (0,) * (3 - len(bound))
    if op in ("==", "!=") and wildcard:
        match = v[:len(bound)] == bound
        return match if op == "==" else not match
    if op == "==":
        return v == padded
    if op == "!=":
        return v != padded
    if op == "~=":  # ~=3.10 is >=3.10,==3.*; ~=3.10.2 is >=3.10.2,==3.10.*
        return v >= padded and v[:len(bound) - 1] == bound[:-1]
    return {">=": v >= padded, ">": v > padded, "<=": v <= padded, "<": v < padded}[op]


def allowed_minors(spec: str | None) -> set[int]:
    """The CPython 3.x minor versions a requires-python specifier admits (any patch release)."""
    clauses = []
    for clause in (spec or "").split(","):
        match = re.match(r"\s*(~=|==|!=|<=|>=|<|>)\s*([0-9][0-9.*]*)\s*$", clause)
        if match:
            clauses.append(match.groups())
    return {m for m in PYTHON_MINORS
            if any(all(_satisfies((3, m, p), op, ver) for op, ver in clauses) for p in range(40))}


def describe_minors(minors: set[int]) -> str:
    if not minors:
        return "no Python version"
    lo, hi = min(minors), max(minors)
    return f"3.{lo}" if lo == hi else f"3.{lo}-3.{hi}"


def upper_bound(spec: str | None) -> bool:
    return bool(re.search(r"(<|<=|==|~=)\s*[0-9]", spec or ""))


# -- uv -----------------------------------------------------------------------

def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def joint_project(templates: list[TemplateInfo]) -> str:
    """A pyproject.toml with every template's dependencies, Python bounds and uv settings."""
    deps: list[str] = []
    for t in templates:
        deps += [d for d in t.dependencies if d not in deps]
    pythons = [t.requires_python for t in templates if t.requires_python]
    direct = set().union(*(t.direct for t in templates))
    # A template excludes a distribution to keep its rival out; a joint env that
    # another template needs it in must not hide it (the module check sees the clash).
    exclude = sorted({e for t in templates for e in t.uv.get("exclude-dependencies", [])
                      if canonical(e) not in direct})
    no_isolation = sorted({p for t in templates for p in t.uv.get("no-build-isolation-package", [])})
    metadata = {canonical(m["name"]): m for t in templates for m in t.uv.get("dependency-metadata", [])}
    sources = {k: v for t in templates for k, v in t.uv.get("sources", {}).items()}
    lines = [
        "[project]",
        f"name = {_toml('venvserve-plan-' + '-'.join(t.name for t in templates))}",
        'version = "0"',
        f"requires-python = {_toml(','.join(pythons) if pythons else '>=3.8')}",
        f"dependencies = {_toml(deps)}",
        "",
        "[tool.uv]",
        "package = false",
        f"environments = {_toml([PLATFORM])}",
    ]
    if exclude:
        lines.append(f"exclude-dependencies = {_toml(exclude)}")
    if no_isolation:
        lines.append(f"no-build-isolation-package = {_toml(no_isolation)}")
    if sources:
        lines += ["", "[tool.uv.sources]"] + [f"{json.dumps(k)} = {_toml(v)}" for k, v in sources.items()]
    for meta in metadata.values():
        lines += ["", "[[tool.uv.dependency-metadata]]"] + [f"{k} = {_toml(v)}" for k, v in meta.items()]
    for t in templates:
        for index in t.uv.get("index", []):
            lines += ["", "[[tool.uv.index]]"] + [f"{k} = {_toml(v)}" for k, v in index.items()]
    return "\n".join(lines) + "\n"


_CONSTRAINT = re.compile(r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?"  # name[extras]
                         r"\s*(==|>=|<=|!=|~=|<|>)\s*([0-9][\w.*+!-]*)")  # op version


def clashing_packages(message: str) -> dict[str, list[str]]:
    """From uv's explanation: packages named with two or more different constraints."""
    seen: dict[str, list[str]] = {}
    for name, op, ver in _CONSTRAINT.findall(message):
        name = canonical(name)
        if name.startswith("venvserve-plan"):
            continue
        constraint = f"{op}{ver.rstrip('.,')}"
        if constraint not in seen.setdefault(name, []):
            seen[name].append(constraint)
    return {name: cs for name, cs in seen.items() if len(cs) > 1}


def uv_explanation(output: str) -> list[str]:
    lines = [line.rstrip() for line in output.splitlines()]
    keep = [line for line in lines if line.strip() and not line.startswith(("Using ", "Resolved "))]
    return keep[:12]


@dataclass
class Verdict:
    """Whether some templates can share one env, and the evidence."""
    members: list[str]
    ok: bool
    conflicts: list[dict] = field(default_factory=list)  # {"kind", "packages", "detail"}
    notes: list[str] = field(default_factory=list)
    packages: int = 0
    size_bytes: int = 0
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
        self._files: dict[str, dict[str, tuple[str, str]]] = {}
        self._reasons: dict[str, str] = {}
        self._reasons_lock = threading.Lock()

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
        names = [t.name for t in templates]
        verdict = Verdict(names, True)
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
            result = self._lock(project)
            if result.get("final"):
                self._cache_put(key, result)
        else:
            verdict.cached = True
        if not result["ok"]:
            verdict.ok = False
            clash = clashing_packages("\n".join(result["explanation"]))
            culprits = {name: cs for name, cs in clash.items()}
            detail = "; ".join(f"{name} {' vs '.join(cs)}" for name, cs in culprits.items())
            kind = "resolution" if result.get("final") else "error"
            verdict.conflicts.append({"kind": kind, "packages": sorted(culprits),
                                      "detail": detail or (result["explanation"] or ["uv lock failed"])[-1].strip(),
                                      "uv": result["explanation"]})
        else:
            verdict.packages = len(result["packages"])
            verdict.size_bytes = result.get("size_bytes", 0)
            for module, dists in self.module_clashes(templates, set(result["packages"])).items():
                verdict.ok = False
                owners = ", ".join(f"{d} ({', '.join(self.brought_by(templates, d)) or 'transitive'})" for d in dists)
                verdict.conflicts.append({"kind": "module", "packages": list(dists),
                                          "detail": f"module {module} is installed by {owners}"})
        verdict.seconds = time.monotonic() - t0
        return verdict

    def _lock(self, project: str) -> dict:
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
                explanation = uv_explanation(output)
                # "No solution found" is a verdict; a network or build error is not (never cached).
                final = "No solution found" in output or "unsatisfiable" in output
                return {"ok": False, "final": final, "explanation": explanation}
            lockfile = Path(tmp) / "uv.lock"
            return {"ok": True, "final": True, "packages": sorted(lock_packages(lockfile)),
                    "size_bytes": estimate_size(lockfile), "explanation": []}

    # -- file-level clashes -----------------------------------------------------

    def module_clashes(self, templates: list[TemplateInfo], packages: set[str]) -> dict[str, tuple[str, ...]]:
        clashes: dict[str, tuple[str, ...]] = {}
        for module, owners in MODULE_OWNERS.items():
            present = tuple(d for d in owners if d in packages)
            if len(present) > 1:
                clashes[module] = present
        # Envs already built: two distributions writing one path with different contents.
        files: dict[str, tuple[str, str]] = {}
        for t in templates:
            for path, (digest, dist) in self.installed_files(t.name).items():
                if dist not in packages:
                    continue
                other = files.setdefault(path, (digest, dist))
                if other[1] != dist and other[0] != digest:
                    module = path.split("/", 1)[0].removesuffix(".py")
                    clashes.setdefault(module, tuple(sorted({other[1], dist})))
        return clashes

    def installed_files(self, env: str) -> dict[str, tuple[str, str]]:
        """path → (hash, distribution) from the RECORD files of a built env of ``env``."""
        if env in self._files:
            return self._files[env]
        out: dict[str, tuple[str, str]] = {}
        venv = self.ready_envs.get(env)
        for record in (venv.glob("lib/python3*/site-packages/*.dist-info/RECORD") if venv else []):
            dist = canonical(record.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0])
            try:
                rows = record.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for row in rows:
                path, _, rest = row.partition(",")
                if not path or path.startswith("..") or ".dist-info/" in path or "__pycache__" in path:
                    continue
                out[path] = (rest.partition(",")[0], dist)
        self._files[env] = out
        return out

    @staticmethod
    def brought_by(templates: list[TemplateInfo], dist: str) -> list[str]:
        return [t.name for t in templates if dist in t.direct or dist in t.locked()]

    # -- why a template has an upper Python bound ------------------------------------

    def python_bound_reason(self, t: TemplateInfo) -> str:
        with self._reasons_lock:  # one lookup per template, however many pairs ask
            if t.name not in self._reasons:
                self._reasons[t.name] = self._python_bound_reason(t)
            return self._reasons[t.name]

    def _python_bound_reason(self, t: TemplateInfo) -> str:
        declared = []
        locked = t.locked()
        deps = sorted(t.direct)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            found = list(pool.map(lambda d: (d, self.requires_python_of(d, (locked.get(d) or [None])[0])), deps))
        own_max = max(allowed_minors(t.requires_python) or {0})
        for dist, spec in found:
            # Only the declarations at least as tight as the template's bound explain it.
            if spec and upper_bound(spec) and max(allowed_minors(spec) or {0}) <= own_max:
                version = (locked.get(dist) or ["?"])[0]
                declared.append(f"{dist} {version} declares Requires-Python {spec}")
        why = f" ({'; '.join(declared)})" if declared else " (the template's own bound)"
        return f"{t.name} requires Python {t.requires_python}{why}"

    def requires_python_of(self, dist: str, version: str | None) -> str | None:
        """Requires-Python of a release, from PyPI's simple index (JSON), cached; None if unknown."""
        if not version or self.offline_index:
            return None
        key = hashlib.sha256(f"rp\0{dist}\0{version}".encode()).hexdigest()[:24]
        cached = self._cache_get(key)
        if cached is not None:
            return cached.get("requires_python")
        url = f"https://pypi.org/simple/{dist}/"
        request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                files = json.loads(response.read()).get("files", [])
        except (OSError, ValueError):
            return None
        specs = {f.get("requires-python") for f in files if release_of(f.get("filename", "")) == (dist, version)}
        spec = next((s for s in specs if s), None)
        self._cache_put(key, {"requires_python": spec})
        return spec

    # -- the plan ---------------------------------------------------------------

    def plan(self, names: list[str], workers: int = 4) -> dict:
        t0 = time.monotonic()
        templates = {n: load_template(self.templates_dir / n) for n in names}
        pairs = list(itertools.combinations(names, 2))
        with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
            verdicts = dict(zip(pairs, pool.map(lambda p: self.check([templates[p[0]], templates[p[1]]]), pairs)))
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
            cover = clique_cover(names, compatible, forbidden)
            confirmed, failed = [], None
            for group in cover:
                if len(group) == 1:
                    confirmed.append(Verdict(group, True, packages=len(templates[group[0]].locked()),
                                             size_bytes=estimate_size(templates[group[0]].path / "uv.lock")))
                    continue
                verdict = self.check([templates[n] for n in group])
                if not verdict.ok:
                    failed = frozenset(group)
                    break
                alone = {n: estimate_size(templates[n].path / "uv.lock") for n in group}
                small = [n for n, size in alone.items() if size and verdict.size_bytes > 4 * size]
                if small:
                    verdict.notes.append("grows " + ", ".join(
                        f"{n} from ≈{human_size(alone[n])} alone" for n in small)
                        + f" to ≈{human_size(verdict.size_bytes)} together")
                confirmed.append(verdict)
            if failed is None:
                return confirmed
            forbidden.append(failed)  # pairwise fine, jointly not: never group these together


def clique_cover(names: list[str], compatible: set, forbidden: list[frozenset] = ()) -> list[list[str]]:
    """The fewest groups in which every two members are compatible (exact search)."""
    def ok(a, b):
        return (a, b) in compatible or (b, a) in compatible

    best: list[list[str]] | None = None

    def place(i, groups):
        nonlocal best
        if best is not None and len(groups) >= len(best):
            return
        if i == len(names):
            best = [list(g) for g in groups]
            return
        name = names[i]
        for g in groups:
            if all(ok(name, m) for m in g) and not any(f <= frozenset(g + [name]) for f in forbidden):
                g.append(name)
                place(i + 1, groups)
                g.pop()
        groups.append([name])
        place(i + 1, groups)
        groups.pop()

    place(0, [])
    return best or []


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB", "MiB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def release_of(filename: str) -> tuple[str, str] | None:
    """(canonical name, version) of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return (canonical(parts[0]), parts[1]) if len(parts) >= 5 else None
    for ext in (".tar.gz", ".zip", ".tar.bz2"):
        if filename.endswith(ext):
            name, _, version = filename[:-len(ext)].rpartition("-")
            return (canonical(name), version) if name else None
    return None


def estimate_size(lockfile: Path) -> int:
    """Download size of a lock for CPython 3.11-3.12 on Linux x86_64 (≈, from the wheel sizes uv records)."""
    try:
        data = tomllib.loads(Path(lockfile).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return 0
    sizes: dict[str, int] = {}
    for pkg in data.get("package", []):
        best = None
        for wheel in pkg.get("wheels", []):
            name = wheel.get("url", "").rsplit("/", 1)[-1]
            if not re.search(r"(manylinux|linux)_?[\w.]*x86_64|-any\.whl$", name):
                continue
            if not re.search(r"-(cp3(11|12)|py3|py2\.py3|abi3)[-.]", name) and "abi3" not in name:
                continue
            best = max(best or 0, int(wheel.get("size", 0)))
        if best is None and pkg.get("sdist"):
            best = int(pkg["sdist"].get("size", 0))
        sizes[canonical(pkg["name"])] = max(sizes.get(canonical(pkg["name"]), 0), best or 0)
    return sum(sizes.values())
