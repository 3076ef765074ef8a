"""`python -m distdl.cli ...`: the `distdl` command."""
from . import main

main()
