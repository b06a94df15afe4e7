"""Integration tests: real ansible-playbook runs against the local Keystone + Glance.

The cloud is started once per test run (a no-op when it already runs) and left as found.
The targets' streams (target_streams.py) start with the first integration test that leaves
the cloud's services running (tests marked ``restarts_cloud`` run first, before them); the
tests are ordered so that the targets come last, those that count Glance's requests at the
very end, when nothing else runs against the cloud.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from devcloud_state import (
    DEVCLOUD,
    FLEET_REGIONS,
    REPO,
    SECOND_DIR,
    STATE_DIR,
    WITH_NOVA,
    nova_running,
    regions,
    second_cloud,
)
from http_server import serve
from target_streams import (
    EXCLUSIVE_TARGETS,
    NOVA_TARGETS,
    STREAMS,
    STREAMS_RUNNING,
    TWO_CLOUD_TARGETS,
    run_target,
)

HERE = Path(__file__).resolve().parent


def _collections_path(tmp_root: Path) -> str:
    link = tmp_root / 'ansible_collections' / 'imagegov' / 'openstack'
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(REPO)
    return str(tmp_root)


@pytest.fixture(scope='session')
def devcloud() -> Path:
    status = subprocess.run([str(DEVCLOUD), 'status'], capture_output=True, text=True, check=False)
    if status.returncode != 0 or (WITH_NOVA and not nova_running()):
        tier = ['--nova'] if WITH_NOVA else []
        subprocess.run([str(DEVCLOUD), 'install', *tier], check=True)
        subprocess.run([str(DEVCLOUD), 'start', *tier], check=True)
    clouds = STATE_DIR / 'clouds.yaml'
    assert clouds.is_file(), f'{clouds} missing after devcloud start'
    return clouds


@pytest.fixture(scope='session')
def ansible_env(devcloud: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # The policy each test means, whatever the developer's shell pins.
    env = {k: v for k, v in os.environ.items() if k not in ('IMAGEGOV_POLICY', 'IMAGEGOV_BASE_POLICY')}
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=f'{venv_bin}:{env.get("PATH", "")}',
        ANSIBLE_COLLECTIONS_PATH=_collections_path(tmp_path_factory.mktemp('collections')),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_ROLES_PATH=str(REPO / 'tests' / 'integration' / 'targets'),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_FORCE_COLOR='0',
        ANSIBLE_DEPRECATION_WARNINGS='false',
        OS_CLIENT_CONFIG_FILE=str(devcloud),
        IMAGEGOV_DEVCLOUD_DIR=str(STATE_DIR),
        # The digest cache of this test run only: what a developer's runs remembered must
        # not make a test pass.
        IMAGEGOV_CACHE_DIR=str(tmp_path_factory.mktemp('digest-cache')),
    )
    return env


@pytest.fixture(scope='session')
def http_root(tmp_path_factory: pytest.TempPathFactory):
    """Directory served on loopback, and its base URL; each target works in a subdirectory."""
    root = tmp_path_factory.mktemp('served')
    server = serve(str(root))
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


@pytest.fixture(scope='session')
def second_devcloud(devcloud: Path, tmp_path_factory: pytest.TempPathFactory):
    """The second local cloud (Keystone + Glance, ports +100, entries devcloud2-*), started
    only when a test asks for it, stopped at the end if this run started it. Yields the
    extra environment and variables for a target: one clouds.yaml holding both clouds'
    entries, and the second cloud's Glance log and state directory."""
    started = second_cloud('status', check=False).returncode != 0
    if started:
        result = second_cloud('start', check=False)
        assert result.returncode == 0, f'second devcloud did not start:\n{result.stderr[-5000:]}'
    try:
        merged: dict = {'clouds': {}}
        for clouds in (devcloud, SECOND_DIR / 'clouds.yaml'):
            merged['clouds'].update(yaml.safe_load(clouds.read_text())['clouds'])
        path = tmp_path_factory.mktemp('two-clouds') / 'clouds.yaml'
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(merged))
        yield {
            'env': {'OS_CLIENT_CONFIG_FILE': str(path)},
            'vars': {
                'glance2_log': str(SECOND_DIR / 'state' / 'logs' / 'glance.log'),
                'devcloud_dir': str(STATE_DIR),
                'devcloud2_dir': str(SECOND_DIR),
            },
        }
    finally:
        if started:
            second_cloud('stop', check=False)


@pytest.fixture(scope='session')
def fleet_regions(devcloud: Path):
    """RegionTwo and RegionThree beside RegionOne: each its own Glance in the one Keystone's
    catalog, started only when a test asks for them, stopped at the end if this run started them."""
    started = regions('status', *FLEET_REGIONS, check=False).returncode != 0
    if started:
        result = regions('start', *FLEET_REGIONS, check=False)
        assert result.returncode == 0, f'regions did not start:\n{result.stderr[-5000:]}'
    try:
        yield ('RegionOne', *FLEET_REGIONS)
    finally:
        if started:
            regions('stop', *FLEET_REGIONS, check=False)


def _target(item: pytest.Item) -> str | None:
    if item.path.parent == HERE and item.path.name == 'test_targets.py':
        return item.callspec.params['target']
    return None


def _selected_targets(session: pytest.Session) -> set[str]:
    return {target for item in session.items if (target := _target(item))}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers', 'restarts_cloud: the test restarts a service of the local cloud; it runs before the streams start'
    )


def _restarts_cloud(item: pytest.Item) -> bool:
    return item.get_closest_marker('restarts_cloud') is not None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that restart the cloud's services first, then the other integration tests
    (the streams run beside them), then the targets that share the streams, then the
    exclusive ones; tests outside tests/integration keep their places."""

    def rank(item: pytest.Item) -> int:
        if _restarts_cloud(item):
            return -1
        target = _target(item)
        return 0 if target is None else 2 if target in EXCLUSIVE_TARGETS else 1

    places = [i for i, item in enumerate(items) if item.path.is_relative_to(HERE)]
    for place, item in zip(places, sorted((items[i] for i in places), key=rank), strict=True):
        items[place] = item


@pytest.fixture(scope='session')
def target_runner(request: pytest.FixtureRequest, ansible_env: dict[str, str], http_root: tuple[Path, str]):
    """Runs one target's playbook; the second local cloud is started first when a selected
    target needs it (here, in the main thread, not in a stream's)."""
    extra_env: dict[str, str] = {}
    extra: list[str] = []
    if TWO_CLOUD_TARGETS & _selected_targets(request.session):
        second = request.getfixturevalue('second_devcloud')
        extra_env = second['env']
        for key, value in second['vars'].items():
            extra += ['-e', f'{key}={value}']
    nova = nova_running()

    def run(target: str) -> subprocess.CompletedProcess:
        if target in NOVA_TARGETS and not nova:
            return subprocess.CompletedProcess([], 0, 'skipped: no Nova tier failed=0 ok=0', '')
        two_clouds = target in TWO_CLOUD_TARGETS
        return run_target(target, ansible_env, http_root, extra_env if two_clouds else {}, extra if two_clouds else [])

    return run


@pytest.fixture(autouse=True)
def target_streams(request: pytest.FixtureRequest) -> None:
    """Starts the shared targets' streams with the first integration test that does not
    restart the cloud's services (a restart mid-stream fails the targets' requests)."""
    if STREAMS_RUNNING.threads or _restarts_cloud(request.node):
        return
    shared = _selected_targets(request.session) - EXCLUSIVE_TARGETS
    if shared:
        STREAMS_RUNNING.start(shared, request.getfixturevalue('target_runner'))


def pytest_terminal_summary(terminalreporter) -> None:
    if not STREAMS_RUNNING.seconds:
        return
    terminalreporter.section('integration target streams')
    for number, stream in enumerate(STREAMS, 1):
        times = [
            f'{target} {STREAMS_RUNNING.seconds[target]:.0f}s' for target in stream if target in STREAMS_RUNNING.seconds
        ]
        if times:
            total = sum(STREAMS_RUNNING.seconds[target] for target in stream if target in STREAMS_RUNNING.seconds)
            terminalreporter.write_line(f'stream {number} ({total:.0f}s): ' + ', '.join(times))
