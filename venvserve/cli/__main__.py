"""`python -m venvserve.cli ...`: the command line."""

from . import main

main()
