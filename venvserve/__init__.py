"""venvserve: many models, each in its own Python environment, behind one HTTP API."""

__version__ = "0.1.0"
