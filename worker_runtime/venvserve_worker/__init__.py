"""venvserve's worker runtime.

Stdlib-only: it runs under the interpreter of a model's own environment
(any Python from 3.9 on) and is put on that interpreter's PYTHONPATH, so
nothing of venvserve is ever installed into a model env.
"""

__version__ = "0.1.0"
