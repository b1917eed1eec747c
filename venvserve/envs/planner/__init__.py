"""The env planner: which env templates could share one environment?

`venvserve envs plan` turns the rule "add an env only for a hard conflict"
into evidence. For every pair of templates it asks uv to resolve their
requirements together (project.py: a throw-away project joining both
templates' dependencies and Python bounds, locked for Linux x86_64), then
looks for the conflicts a resolver does not see:

- **resolution**: uv finds no solution; the packages whose constraints clash
  are read from uv's explanation (``transformers==4.47.1`` against
  ``transformers>=4.56``).
- **module** (files.py): the joint lock holds two distributions that install
  the same top-level module (``opencv-python`` and ``opencv-python-headless``
  both install ``cv2``), known from a table and from the RECORD files of envs
  already built in the data dir.
- **python** (pythons.py): the templates' ``requires-python`` ranges do not
  overlap; where one is narrower, the plan names the dependencies that
  declare the bound, read from PyPI's simple index (pypi.py).

The proposal is the fewest groups of pairwise-compatible templates
(solver.py, an exact clique cover), each group then locked as a whole to
confirm it (plan.py). Sizes are in the units of `venvserve envs list`
(sizes.py). Every uv verdict is cached in the data dir by the hash of the
joint project, so a second run is offline and instant.
"""

from .files import MODULE_OWNERS
from .plan import Planner, Verdict
from .project import PLATFORM, clashing_packages, joint_project, uv_explanation
from .pypi import release_of
from .pythons import allowed_minors, describe_minors, upper_bound
from .sizes import estimate_size, human_size
from .solver import clique_cover
from .templates import TemplateInfo, canonical, load_template, lock_packages, requirement_name

__all__ = ["MODULE_OWNERS", "PLATFORM", "Planner", "TemplateInfo", "Verdict", "allowed_minors", "canonical",
           "clashing_packages", "clique_cover", "describe_minors", "estimate_size", "human_size",
           "joint_project", "load_template", "lock_packages", "release_of", "requirement_name",
           "upper_bound", "uv_explanation"]
