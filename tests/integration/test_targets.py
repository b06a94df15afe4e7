"""Each directory in targets/ (ansible-test layout) is one playbook run that must succeed.

Two streams of targets run side by side (see STREAMS); the targets that count Glance's
requests run alone, after them.

The targets assert their own outcomes (``changed`` / ``not changed``, error texts, what
Glance holds afterwards); a failing assert fails the run, and its output is shown here.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from devcloud_state import nova_running
from playbook_runner import run_playbook

HERE = Path(__file__).resolve().parent
# Targets that run under the collection's default policy; the others test the modules'
# mechanics against Glance under a policy that allows what Glance allows.
DEFAULT_POLICY_TARGETS = {'policy', 'threats'}
# Targets that need the devcloud's Nova tier (servers that use an image, for the default
# policy's no-delete-in-use: without Nova every deletion under it is refused as unchecked;
# Cinder, part of that tier, for volumes made from images and volume-backed servers).
NOVA_TARGETS = {'usage', 'catalog', 'catalog_scale', 'threats', 'image_bundle', 'volumes', 'image_capture'}
# Targets that move images between two clouds: the second local cloud runs for them.
TWO_CLOUD_TARGETS = {'image_transfer'}
TARGETS = sorted(
    p.name
    for p in (HERE / 'targets').iterdir()
    if (p / 'tasks' / 'main.yml').is_file() and not p.name.startswith('setup_')
)


# Targets that count every request Glance logs between two marks (to prove a refusal came
# before any request): they run alone. The others run in two streams side by side, which
# the cloud's tests leave room for on two cores; the Nova tier's targets share one stream, so
# their servers count against the projects' quotas one target at a time.
EXCLUSIVE_TARGETS = {'catalog', 'policy', 'policy_check', 'threats'}
STREAMS = (
    ('usage', 'catalog_scale', 'image_bundle', 'volumes', 'image_capture', 'image_build', 'image_member', 'image_info'),
    ('image', 'convert', 'image_transfer', 'catalog_series', 'image_export'),
)


class _Streams:
    """The shared targets' runs, started once, in two threads; each test waits for its own."""

    def __init__(self) -> None:
        self.futures: dict[str, concurrent.futures.Future] = {}
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None

    def start(self, selected: set[str], run: Callable[[str], subprocess.CompletedProcess]) -> None:
        """Runs the selected targets of each stream (./dev test -k image_info runs that one)."""
        if self.pool is not None:
            return
        self.pool = concurrent.futures.ThreadPoolExecutor(len(STREAMS), thread_name_prefix='targets')
        for stream in STREAMS:
            targets = [target for target in stream if target in selected]
            chain: concurrent.futures.Future = self.pool.submit(_run_stream, targets, run)
            for target in targets:
                self.futures[target] = chain

    def result(self, target: str) -> subprocess.CompletedProcess:
        return self.futures[target].result()[target]

    def drain(self) -> None:
        for future in self.futures.values():
            future.exception()  # waits; a failure is reported by the target's own test


def _run_stream(targets: list[str], run: Callable[[str], subprocess.CompletedProcess]) -> dict:
    results = {}
    for target in targets:
        results[target] = run(target)
    return results


_STREAMS = _Streams()
assert set(TARGETS) == EXCLUSIVE_TARGETS | {t for stream in STREAMS for t in stream}, (
    'every target is exclusive or in a stream: add a new target to EXCLUSIVE_TARGETS or STREAMS'
)


@pytest.mark.parametrize('target', TARGETS)
def test_target(
    target: str, ansible_env: dict[str, str], http_root: tuple[Path, str], request: pytest.FixtureRequest
) -> None:
    nova = nova_running()
    if target in NOVA_TARGETS and not nova:
        pytest.skip('needs the Nova tier: tests/devcloud/devcloud start --nova (IMAGEGOV_TEST_NOVA=0 skips it)')
    selected = {item.callspec.params['target'] for item in request.session.items if item.originalname == 'test_target'}
    starts_streams = target not in EXCLUSIVE_TARGETS and _STREAMS.pool is None
    extra_env: dict[str, str] = {}
    extra: list[str] = []
    if target in TWO_CLOUD_TARGETS or (starts_streams and TWO_CLOUD_TARGETS & (selected - EXCLUSIVE_TARGETS)):
        # A session fixture: asked for in the context of the test that starts the streams.
        second = request.getfixturevalue('second_devcloud')
        extra_env = second['env']
        for key, value in second['vars'].items():
            extra += ['-e', f'{key}={value}']

    def run(name: str) -> subprocess.CompletedProcess:
        if name in NOVA_TARGETS and not nova:
            return subprocess.CompletedProcess([], 0, 'skipped: no Nova tier failed=0 ok=0', '')
        two_clouds = name in TWO_CLOUD_TARGETS
        return _run_target(name, ansible_env, http_root, extra_env if two_clouds else {}, extra if two_clouds else [])

    if target in EXCLUSIVE_TARGETS:
        _STREAMS.drain()
        result = run(target)
    else:
        _STREAMS.start(selected, run)
        result = _STREAMS.result(target)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f'target {target} failed:\n{output[-20000:]}'
    assert 'failed=0' in result.stdout and 'ok=' in result.stdout


def _run_target(
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
