"""GPU facts through NVML, when a GPU and the NVML library are present.

The gateway stays lean: pynvml (nvidia-ml-py) is optional; without it, or
without a GPU, every answer here is "none".
"""

import functools


@functools.lru_cache(maxsize=1)
def _nvml():
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:
        return None


def available() -> bool:
    nvml = _nvml()
    try:
        return bool(nvml and nvml.nvmlDeviceGetCount() > 0)
    except Exception:
        return False


def _device_sum(field: str) -> int:
    nvml = _nvml()
    if not available():
        return 0
    return sum(getattr(nvml.nvmlDeviceGetMemoryInfo(nvml.nvmlDeviceGetHandleByIndex(i)), field) // 2**20
               for i in range(nvml.nvmlDeviceGetCount()))


def total_memory_mb() -> int:
    return _device_sum("total")


def used_memory_mb() -> int:
    return _device_sum("used")


def process_memory_mb() -> dict[int, int]:
    """GPU memory in use per pid, over all devices."""
    nvml = _nvml()
    if not available():
        return {}
    usage: dict[int, int] = {}
    for i in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
            usage[proc.pid] = usage.get(proc.pid, 0) + (proc.usedGpuMemory or 0) // 2**20
    return usage
