"""`python -m lakeline.cli`: the same as the `lakeline` command."""

from lakeline.cli import main

main()
