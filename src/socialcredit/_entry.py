"""The `socialcredit` command's entry point: Ctrl-C at any moment ends in one line, status 130.

It is its own tiny module so that an interrupt during the imports (the CLI's modules are
imported only in here) is caught like one during a command.
"""

from __future__ import annotations

import signal
import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        from .cli import app

        app()
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; nothing more was written\n")
        sys.exit(EXIT_INTERRUPTED)
    finally:
        # The work is done (or undone): an interrupt now would only cut the exit short and
        # kill the process by the signal, hiding the status it was about to report.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
