"""Environments: templates under envs/ materialised with uv into the data dir."""

from .manager import EnvManager, EnvStatus, EnvState

__all__ = ["EnvManager", "EnvStatus", "EnvState"]
