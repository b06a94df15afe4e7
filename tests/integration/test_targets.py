"""Each directory in targets/ (ansible-test layout) is one playbook run that must succeed.

Most targets run in two streams beside the other integration tests (target_streams.py,
started by conftest.py's ``target_streams``); the targets that count Glance's requests run
alone, last.

The targets assert their own outcomes (``changed`` / ``not changed``, error texts, what
Glance holds afterwards); a failing assert fails the run, and its output is shown here.
"""

from __future__ import annotations

import pytest
from devcloud_state import nova_running
from target_streams import EXCLUSIVE_TARGETS, NOVA_TARGETS, STREAMS_RUNNING, TARGETS


@pytest.mark.parametrize('target', TARGETS)
def test_target(target: str, target_runner) -> None:
    if target in NOVA_TARGETS and not nova_running():
        pytest.skip('needs the Nova tier: tests/devcloud/devcloud start --nova (IMAGEGOV_TEST_NOVA=0 skips it)')
    if target in EXCLUSIVE_TARGETS:
        STREAMS_RUNNING.drain()
        result = target_runner(target)
    else:
        result = STREAMS_RUNNING.result(target)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f'target {target} failed:\n{output[-20000:]}'
    assert 'failed=0' in result.stdout and 'ok=' in result.stdout
