"""`python -m socialcredit`: the same as the `socialcredit` command."""

from ._entry import main

main()
