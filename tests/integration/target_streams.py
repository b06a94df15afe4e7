"""The integration targets (tests/integration/targets) and how a test run schedules them.

Most targets run in two streams side by side, started with the first integration test, so
they overlap the other integration tests instead of waiting for them; each target's test
waits for that target's own result. The targets that count every request Glance logs
between two marks (to prove a refusal came before any request) run alone, last, once the
streams and every other integration test are done (conftest.py orders the tests so).
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from playbook_runner import run_playbook

HERE = Path(__file__).resolve().parent
TARGETS = sorted(
    p.name
    for p in (HERE / 'targets').iterdir()
    if (p / 'tasks' / 'main.yml').is_file() and not p.name.startswith('setup_')
)
# Targets that run under the collection's default policy; the others test the modules'
# mechanics against Glance under a policy that allows what Glance allows.
DEFAULT_POLICY_TARGETS = {'policy', 'threats'}
# Targets that need the devcloud's Nova tier (servers that use an image, for the default
# policy's no-delete-in-use: without Nova every deletion under it is refused as unchecked;
# Cinder, part of that tier, for volumes made from images and volume-backed servers).
NOVA_TARGETS = {'usage', 'catalog', 'catalog_scale', 'threats', 'image_bundle', 'volumes', 'image_capture'}
# Targets that move images between two clouds: the second local cloud runs for them.
TWO_CLOUD_TARGETS = {'image_transfer'}
# Targets that count every request Glance logs between two marks: they run alone. The Nova
# tier's targets share one stream, so their servers count against the projects' quotas one
# target at a time.
EXCLUSIVE_TARGETS = {'catalog', 'policy', 'policy_check', 'threats'}
STREAMS = (
    ('usage', 'catalog_scale', 'image_bundle', 'volumes', 'image_capture', 'image_build', 'image_member', 'image_info'),
    ('image', 'convert', 'image_transfer', 'catalog_series', 'image_export'),
)
assert set(TARGETS) == EXCLUSIVE_TARGETS | {t for stream in STREAMS for t in stream}, (
    'every target is exclusive or in a stream: add a new target to EXCLUSIVE_TARGETS or STREAMS'
)

Run = Callable[[str], subprocess.CompletedProcess]


class Streams:
    """The shared targets' runs: one thread per stream, one future per target."""

    def __init__(self) -> None:
        self.futures: dict[str, concurrent.futures.Future] = {}
        self.seconds: dict[str, float] = {}
        self.threads: list[threading.Thread] = []

    def start(self, selected: set[str], run: Run) -> None:
        """Runs the selected targets of each stream (./dev test -k image_info runs that one)."""
        if self.threads:
            return
        for number, stream in enumerate(STREAMS, 1):
            targets = [target for target in stream if target in selected]
            for target in targets:
                self.futures[target] = concurrent.futures.Future()
            thread = threading.Thread(target=self._run, args=(targets, run), name=f'targets-{number}', daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, targets: list[str], run: Run) -> None:
        for target in targets:
            started = time.monotonic()
            try:
                self.futures[target].set_result(run(target))
            except BaseException as exc:  # reported by the target's own test
                self.futures[target].set_exception(exc)
            self.seconds[target] = time.monotonic() - started

    def result(self, target: str) -> subprocess.CompletedProcess:
        return self.futures[target].result()

    def drain(self) -> None:
        for thread in self.threads:
            thread.join()


STREAMS_RUNNING = Streams()


def run_target(
    target: str, ansible_env: dict[str, str], http_root: tuple[Path, str], extra_env: dict[str, str], extra: list[str]
) -> subprocess.CompletedProcess:
    prefix = f'it-{target}-{uuid.uuid4().hex[:6]}'
    root, base_url = http_root
    work_dir = root / prefix
    work_dir.mkdir()
    env = dict(ansible_env, **extra_env)
    if target not in DEFAULT_POLICY_TARGETS:
        env['IMAGEGOV_POLICY'] = str(HERE / 'policies' / 'glance-parity.yml')
    return run_playbook(
        env,
        HERE / 'run_target.yml',
        '-e',
        f'target={target}',
        '-e',
        f'resource_prefix={prefix}',
        '-e',
        f'work_dir={work_dir}',
        '-e',
        f'url_base={base_url}/{prefix}',
        '-e',
        f'broken_url_base={base_url}/broken/{prefix}',
        '-e',
        f'glance_log={ansible_env["IMAGEGOV_DEVCLOUD_DIR"]}/state/logs/glance.log',
        '-e',
        f'repo_root={HERE.parents[1]}',
        *extra,
    )
