"""Where the local cloud lives and which tier of it runs, for the integration tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEVCLOUD = REPO / 'tests' / 'devcloud' / 'devcloud'
STATE_DIR = Path(os.environ.get('IMAGEGOV_DEVCLOUD_DIR', REPO / '.devcloud'))

# The Nova tier (for which servers use an image) unless IMAGEGOV_TEST_NOVA=0.
WITH_NOVA = os.environ.get('IMAGEGOV_TEST_NOVA', '1') != '0'


def nova_running() -> bool:
    """The whole Nova tier answers, Cinder included (devcloud status --nova lists it)."""
    return (
        subprocess.run([str(DEVCLOUD), 'status', '--nova'], capture_output=True, text=True, check=False).returncode == 0
    )
