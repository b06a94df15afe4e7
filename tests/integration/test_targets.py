"""Each directory in targets/ (ansible-test layout) is one playbook run that must succeed.

The targets assert their own outcomes (``changed`` / ``not changed``, error texts, what
Glance holds afterwards); a failing assert fails the run, and its output is shown here.
"""

from __future__ import annotations

import uuid
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


@pytest.mark.parametrize('target', TARGETS)
def test_target(
    target: str, ansible_env: dict[str, str], http_root: tuple[Path, str], request: pytest.FixtureRequest
) -> None:
    if target in NOVA_TARGETS and not nova_running():
        pytest.skip('needs the Nova tier: tests/devcloud/devcloud start --nova (IMAGEGOV_TEST_NOVA=0 skips it)')
    prefix = f'it-{target}-{uuid.uuid4().hex[:6]}'
    root, base_url = http_root
    work_dir = root / prefix
    work_dir.mkdir()
    env = dict(ansible_env)
    if target not in DEFAULT_POLICY_TARGETS:
        env['IMAGEGOV_POLICY'] = str(HERE / 'policies' / 'glance-parity.yml')
    extra: list[str] = []
    if target in TWO_CLOUD_TARGETS:
        second = request.getfixturevalue('second_devcloud')
        env.update(second['env'])
        for key, value in second['vars'].items():
            extra += ['-e', f'{key}={value}']
    result = run_playbook(
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
    output = result.stdout + result.stderr
    assert result.returncode == 0, f'target {target} failed:\n{output[-20000:]}'
    assert 'failed=0' in result.stdout and 'ok=' in result.stdout
