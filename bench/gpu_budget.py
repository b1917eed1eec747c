"""GPU budget check: two models that hold real CUDA memory, a budget that fits one.

    python -m bench.gpu_budget --python /path/to/python-with-torch [--mb 20000] [--rounds 5]

Both models are ``echo`` with ``allocate_gpu_mb`` (torch allocates and touches
that much VRAM in load) run by an existing interpreter that has torch, so no
env is built and no registry is needed. Requests alternate between them; each
swap evicts the idle one. Reported per swap: the time for the evicted worker's
memory to be free (per NVML / nvidia-smi) and the time for the next to load.
A sampler reads used VRAM every 20 ms for the whole run: its peak minus the
baseline must stay within the budget.
"""

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import start_server  # noqa: E402

from venvserve.system import gpu  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", required=True, help="an interpreter that has torch with CUDA")
    parser.add_argument("--mb", type=int, default=20000, help="VRAM each model holds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if not gpu.available():
        print("no GPU found (neither NVML nor nvidia-smi answered)", file=sys.stderr)
        return 2
    budget = int(args.mb * 1.5)  # room for one model, not two
    catalog = [{"id": m, "architecture": "echo", "python": args.python, "device": "cuda",
                "gpu_memory_mb": args.mb, "options": {"allocate_gpu_mb": args.mb}} for m in ("gpu-a", "gpu-b")]
    baseline = gpu.used_memory_mb()
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], gpu.used_memory_mb())
            time.sleep(0.02)

    swaps = []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), catalog, args=("--gpu-memory-budget-mb", str(budget),
                                                          "--load-timeout-s", "600"))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            with httpx.Client(base_url=server.url, timeout=900) as client:
                previous = None
                for round_ in range(args.rounds):
                    for model in ("gpu-a", "gpu-b"):
                        t0 = time.monotonic()
                        answer = client.post(f"/v1/models/{model}/infer", json={"round": round_})
                        answer.raise_for_status()
                        seconds = time.monotonic() - t0
                        if previous is not None:
                            swaps.append({"to": model, "swap_s": round(seconds, 3)})
                        previous = model
                log = server.output()
        finally:
            stop.set()
            server.stop()
    freed = [float(line.split("memory freed in ")[1].rstrip("s")) for line in log.splitlines()
             if "memory freed in " in line]
    for swap, free_s in zip(swaps, freed):
        swap["free_s"] = free_s
        swap["load_s"] = round(swap["swap_s"] - free_s, 3)
    result = {"budget_mb": budget, "model_mb": args.mb, "baseline_mb": baseline, "peak_mb": peak[0],
              "peak_over_baseline_mb": peak[0] - baseline, "within_budget": peak[0] - baseline <= budget,
              "swaps": swaps}
    print(json.dumps(result, indent=1))
    return 0 if result["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
