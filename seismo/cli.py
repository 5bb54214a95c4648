"""The ``seismo`` console script.

The command line takes a moment to load (torch, pydantic, Kafka clients); a Ctrl-C
meanwhile ended in a 23-line ``KeyboardInterrupt`` traceback from deep in an import
(a stranger's finding). Here it ends quietly with the status a shell gives an
interrupt, 130, as it does once the command runs.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Load the command line and run it; a Ctrl-C while loading exits 130 without a word."""
    try:
        from seismo.stream.cli.app import main as run
    except KeyboardInterrupt:
        sys.exit(130)
    run()
