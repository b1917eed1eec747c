"""Memory budget arithmetic: does a model fit, and whom to evict to make room.

Pure functions over plain numbers, so the policy can be read and tested
apart from processes. A budget of 0 (or less) means "no limit".
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    max_loaded_models: int = 0
    memory_mb: int = 0
    gpu_memory_mb: int = 0


@dataclass(frozen=True)
class Resident:
    """One loaded (or loading) model as the scheduler sees it."""

    model: str
    memory_mb: float
    gpu_memory_mb: float
    evictable: bool  # idle: no request in flight, none waiting
    last_used: float
    on_gpu: bool


def fits(budget: Budget, resident: list[Resident], model: str, memory_mb: float, gpu_mb: float) -> bool:
    models = {r.model for r in resident} | {model}
    if budget.max_loaded_models > 0 and len(models) > budget.max_loaded_models:
        return False
    if budget.memory_mb > 0 and sum(r.memory_mb for r in resident) + memory_mb > budget.memory_mb:
        return False
    if budget.gpu_memory_mb > 0 and gpu_mb and sum(r.gpu_memory_mb for r in resident) + gpu_mb > budget.gpu_memory_mb:
        return False
    return True


def victims(budget: Budget, resident: list[Resident], model: str, memory_mb: float,
            gpu_mb: float) -> list[Resident] | None:
    """The fewest idle models to evict, least recently used first, so the new one fits.

    None when even evicting every idle candidate would not make room (the
    caller then waits for a busy model to become idle). A CPU-only model
    never evicts a GPU model: it does not need what the GPU model holds.
    """
    kept = [r for r in resident if r.model != model]
    chosen: list[Resident] = []
    candidates = sorted((r for r in kept if r.evictable and (gpu_mb or not r.on_gpu)),
                        key=lambda r: r.last_used)
    for candidate in [None, *candidates]:
        if candidate is not None:
            chosen.append(candidate)
            kept = [r for r in kept if r is not candidate]
        if fits(budget, kept + [r for r in resident if r.model == model], model, memory_mb, gpu_mb):
            return chosen
    return None
