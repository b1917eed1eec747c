"""GPU facts: through NVML (nvidia-ml-py) when it is installed, else `nvidia-smi`.

The gateway stays lean, so pynvml is optional; a machine with the NVIDIA
driver always has `nvidia-smi`. Without either, or without a GPU, every
answer here is "none".
"""

import functools
import shutil
import subprocess


@functools.lru_cache(maxsize=1)
def _nvml():
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:
        return None


def _smi(*query: str) -> list[list[str]]:
    """Rows of `nvidia-smi --query-...=... --format=csv,noheader,nounits`; [] without it."""
    binary = shutil.which("nvidia-smi")
    if not binary:
        return []
    try:
        out = subprocess.run([binary, *query, "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line.strip()]


def _memory_mb(field: str) -> int:
    nvml = _nvml()
    if nvml:
        try:
            return sum(getattr(nvml.nvmlDeviceGetMemoryInfo(nvml.nvmlDeviceGetHandleByIndex(i)), field) // 2**20
                       for i in range(nvml.nvmlDeviceGetCount()))
        except Exception:
            return 0
    return sum(int(row[0]) for row in _smi(f"--query-gpu=memory.{field}") if row[0].isdigit())


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Is there a GPU? (Asked for every cuda model on every model listing: cached.)"""
    return total_memory_mb() > 0


@functools.lru_cache(maxsize=1)
def total_memory_mb() -> int:
    return _memory_mb("total")


def used_memory_mb() -> int:
    return _memory_mb("used")


def process_memory_mb() -> dict[int, int]:
    """GPU memory in use per pid, over all devices."""
    nvml = _nvml()
    usage: dict[int, int] = {}
    if nvml:
        try:
            for i in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    usage[proc.pid] = usage.get(proc.pid, 0) + (proc.usedGpuMemory or 0) // 2**20
        except Exception:
            return {}
        return usage
    for row in _smi("--query-compute-apps=pid,used_memory"):
        if len(row) == 2 and row[0].isdigit() and row[1].isdigit():
            usage[int(row[0])] = usage.get(int(row[0]), 0) + int(row[1])
    return usage
