"""What the benchmarks share: where the cloud is, which code was measured, progress lines."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def clouds_yaml_path() -> Path:
    if os.environ.get('OS_CLIENT_CONFIG_FILE'):
        return Path(os.environ['OS_CLIENT_CONFIG_FILE'])
    state = os.environ.get('IMAGEGOV_DEVCLOUD_DIR')
    if state and (Path(state) / 'clouds.yaml').is_file():
        return Path(state) / 'clouds.yaml'
    return REPO / '.devcloud' / 'clouds.yaml'


def code_version() -> dict[str, Any]:
    """Which module code was measured: the commit, and a hash of plugins/ as checked out."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ['git', '-C', str(REPO), *args], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ''

    digest = hashlib.sha256()
    for file in sorted((REPO / 'plugins').rglob('*.py')):
        digest.update(str(file.relative_to(REPO)).encode() + b'\0' + file.read_bytes())
    return dict(
        commit=git('rev-parse', '--short', 'HEAD'),
        plugins_modified=bool(git('status', '--porcelain', '--', 'plugins')),
        plugins_sha256=digest.hexdigest()[:16],
    )


def log(message: str) -> None:
    print(f'[{time.strftime("%H:%M:%S")}] {message}', flush=True)


class BenchCloud:
    """An authenticated connection to the cloud a benchmark measures, and its Glance v2 endpoint."""

    def __init__(self, cloud: str, region: str | None = None) -> None:
        import openstack
        import requests

        self.requests = requests
        try:
            self.conn = openstack.connect(cloud=cloud, **({'region_name': region} if region else {}))
            self.conn.session.get_token()
        except Exception as exc:  # unknown cloud entry, Keystone down, bad password...
            raise RuntimeError(
                f'cannot use cloud {cloud!r} of {os.environ["OS_CLIENT_CONFIG_FILE"]}: '
                f'{str(exc).rstrip(".")}. Is the devcloud running (./dev cloud status)?'
            ) from exc
        self.endpoint = self.conn.image.get_endpoint().rstrip('/')  # .../v2
        if not self.endpoint.endswith('/v2'):
            self.endpoint += '/v2'
        self.project_id = self.conn.current_project_id
        self.made: set[str] = set()
