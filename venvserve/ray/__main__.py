"""``python -m venvserve.ray deploy|plan``: the same commands as `venvserve ray ...`.

    python -m venvserve.ray deploy --catalog models.json                 # the cluster of RAY_ADDRESS / `ray start`
    python -m venvserve.ray deploy --address local --num-cpus 2          # a private one-node cluster; blocks
    python -m venvserve.ray plan --catalog models.json                   # print deployments and runtime_envs
"""

from ..cli.ray import READY_PREFIX, app  # noqa: F401  (READY_PREFIX: the line a deploy prints when ready)


def main() -> None:
    app(prog_name="venvserve ray")


if __name__ == "__main__":
    main()
