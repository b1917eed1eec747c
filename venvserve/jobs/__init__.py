"""Durable OCR jobs: a store (SQLite), the model of a job, and a scheduler below interactive requests."""

from .model import JobStatus
from .service import Jobs

__all__ = ["Jobs", "JobStatus"]
