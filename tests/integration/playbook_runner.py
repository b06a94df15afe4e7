"""One way for the integration tests to run ansible-playbook against localhost with the
project's own Ansible (the one beside the running Python)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_playbook(
    env: dict[str, str], playbook: Path, *extra: str, timeout: int = 900, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / 'ansible-playbook'),
            '-i',
            'localhost,',
            '-c',
            'local',
            str(playbook),
            *extra,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
