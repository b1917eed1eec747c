"""Facts about the machine: GPUs (gpu.py) and processes (processes.py)."""
