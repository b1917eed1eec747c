"""`python -m venvserve`: the command line."""

from .cli import main

main()
