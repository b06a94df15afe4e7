"""The support matrix (README, "Support matrix"): every ansible-core version of it runs the
unit tests and ``ansible-test sanity`` in a virtualenv of its own; the oldest also runs a
smoke playbook against the local cloud. The project's own .venv runs everything else on the
newest (tests/integration, tests/sanity).
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from devcloud_state import DEVCLOUD, REPO, STATE_DIR, WITH_NOVA, nova_running
from lanes import Lanes
from matrix import LEGS, NEWEST, OLDEST, Outcome, clean_env

HERE = Path(__file__).resolve().parent
CORES = [leg.core for leg in LEGS]
# ansible-test sanity on the newest ansible-core runs in tests/sanity, in the project's .venv:
# a second run of it on another Python would check the same rules again.
SANITY_CORES = [core for core in CORES if core != NEWEST.core]


def _problems(outcome: Outcome) -> str:
    lines = [line for line in outcome.output.splitlines() if line.startswith(('ERROR', 'FATAL', 'FAILED', 'E   '))]
    shown = '\n'.join(lines[:200]) or outcome.output[-8000:]
    return f'{shown}\n(whole output: {outcome.log})'


@pytest.mark.matrix(checks=('unit',))
@pytest.mark.parametrize('core', CORES)
def test_unit(core: str, lanes: Lanes) -> None:
    outcome = lanes.result(core, 'unit')
    assert outcome.ok, f'unit tests on ansible-core {core}:\n{_problems(outcome)}'
    # A test skipped on one version is how a version's own code path goes untested.
    summary = outcome.output.strip().splitlines()[-1]
    assert ' passed' in summary and 'skipped' not in summary, f'on ansible-core {core}:\n{outcome.output[-3000:]}'


@pytest.mark.matrix(checks=('sanity',))
@pytest.mark.parametrize('core', SANITY_CORES)
def test_sanity(core: str, lanes: Lanes) -> None:
    outcome = lanes.result(core, 'sanity')
    assert outcome.ok, f'ansible-test sanity on ansible-core {core}:\n{_problems(outcome)}'


@pytest.fixture(scope='module')
def cloud() -> Path:
    """The local cloud, started if it is not running (as tests/integration does) and left running."""
    status = subprocess.run([str(DEVCLOUD), 'status'], capture_output=True, text=True, check=False)
    if status.returncode != 0 or (WITH_NOVA and not nova_running()):
        tier = ['--nova'] if WITH_NOVA else []
        subprocess.run([str(DEVCLOUD), 'install', *tier], check=True)
        subprocess.run([str(DEVCLOUD), 'start', *tier], check=True)
    return STATE_DIR / 'clouds.yaml'


@pytest.mark.matrix(core=OLDEST.core)
def test_smoke_on_the_oldest(lanes: Lanes, cloud: Path, tmp_path: Path) -> None:
    venv = lanes.venv(OLDEST.core)
    # The action plugin's pre-2.19 path (get_action_args_with_defaults) is what this runs.
    branch = subprocess.run(
        [str(venv.python), '-c', 'from ansible.executor.module_common import get_action_args_with_defaults'],
        capture_output=True,
        text=True,
        check=False,
    )
    assert branch.returncode == 0, (
        f'ansible-core {OLDEST.core} has no get_action_args_with_defaults: the pre-2.19 '
        f'branch of plugins/plugin_utils/_policy_action.py is dead code now\n{branch.stderr}'
    )
    collections = tmp_path / 'collections'
    (collections / 'ansible_collections' / 'imagegov').mkdir(parents=True)
    (collections / 'ansible_collections' / 'imagegov' / 'openstack').symlink_to(REPO)
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    env = dict(
        clean_env(venv),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_PYTHON_INTERPRETER=str(venv.python),
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_DEPRECATION_WARNINGS='false',
        ANSIBLE_RETRY_FILES_ENABLED='false',
        OS_CLIENT_CONFIG_FILE=str(cloud),
        IMAGEGOV_CACHE_DIR=str(tmp_path / 'digest-cache'),
    )
    prefix = f'smoke-{OLDEST.core}-{uuid.uuid4().hex[:6]}'
    result = subprocess.run(
        [
            str(venv.bin / 'ansible-playbook'),
            '-i',
            'localhost,',
            '-c',
            'local',
            str(HERE / 'smoke.yml'),
            '-e',
            f'resource_prefix={prefix}',
            '-e',
            f'work_dir={work_dir}',
            '-e',
            f'smoke_policy={HERE / "smoke-policy.yml"}',
            '-e',
            f'parity_policy={REPO / "tests" / "integration" / "policies" / "glance-parity.yml"}',
            '-e',
            f'glance_log={STATE_DIR / "state" / "logs" / "glance.log"}',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and 'failed=0' in result.stdout, (
        f'smoke on ansible-core {OLDEST.core}:\n{output[-20000:]}'
    )
    version = subprocess.run(
        [str(venv.bin / 'ansible-playbook'), '--version'], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert f'ansible-playbook [core {OLDEST.core}.' in version, version
