"""venvserve on Ray Serve: the same catalog, env templates and HTTP API on a Ray cluster.

- ``deploy``:  catalog → one Serve deployment per model (its ``runtime_env``
  recreates the model's locked env on every node) + the ingress; entry points
  ``python -m venvserve.ray deploy`` and ``serve run venvserve.ray.deploy:app``.
- ``ingress``: the FastAPI ingress deployment (``/v1/ocr``, ``/v1/models``,
  ``/v1/models/{id}/infer``, ``/v1/status``, ``/healthz``).
- ``replica``: the per-model deployment; it runs in the model's env and loads
  the same backend classes as a local worker (``venvserve_worker.backends``).

Importing this package imports nothing heavy: the replica module is loaded
inside model envs that hold only the model's packages and Ray.
"""
