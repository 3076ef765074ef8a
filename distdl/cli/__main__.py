"""`python -m distdl.cli ...`: the `distdl` command."""
from . import main

__all__: list[str] = []

main()
