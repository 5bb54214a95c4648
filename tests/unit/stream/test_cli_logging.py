"""seismo's log lines: one per event, whatever the input holds (a subprocess, fresh logging)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r'''
import logging
from seismo.stream.cli.common import setup_logging
setup_logging("INFO")
log = logging.getLogger("seismo.test")
log.warning("device %s seen", "pump-1\n2026-01-01 00:00:00,000 ERROR forged: \x1b[2Jgone\r")
try:
    raise ValueError("broken")
except ValueError:
    log.exception("failed on %s", "a\nb")
'''


def test_a_device_id_cannot_forge_a_log_line_and_tracebacks_keep_their_lines():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    lines = done.stderr.splitlines()
    assert lines[0].endswith(
        r"WARNING seismo.test: device pump-1\n2026-01-01 00:00:00,000 ERROR forged: "
        r"\x1b[2Jgone\r seen"
    ), lines
    assert lines[1].endswith(r"ERROR seismo.test: failed on a\nb"), lines
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: broken"
    assert "\x1b" not in done.stderr and "\r" not in done.stderr
