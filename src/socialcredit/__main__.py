"""`python -m socialcredit`: the same as the `socialcredit` command."""

import sys

try:
    from ._entry import main
except KeyboardInterrupt:  # Ctrl-C while Python was still importing the entry point itself
    sys.stderr.write("error: interrupted; nothing more was written\n")
    sys.exit(130)

main()
