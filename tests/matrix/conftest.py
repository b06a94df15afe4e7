"""The support matrix's checks (tests/matrix/lanes.py) start in the background as soon as
collection is done, so they overlap the tests collected before them; each test of
tests/matrix waits for its own result.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent / 'sanity', HERE.parent / 'integration'):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from lanes import CHECKS, Lanes  # noqa: E402
from matrix import BY_CORE, stop_all  # noqa: E402

_LANES: Lanes | None = None


def _wanted(items: list[pytest.Item]) -> dict[str, set[str]]:
    """The versions and checks the selected tests of tests/matrix ask for."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for item in items:
        marker = item.get_closest_marker('matrix')
        if marker is None:
            continue
        core = item.callspec.params.get('core') if hasattr(item, 'callspec') else marker.kwargs['core']
        # A version with no check asked still gets its venv (the smoke test's).
        wanted[core] |= set(marker.kwargs.get('checks', ()))
    return dict(wanted)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line('markers', 'matrix(checks=..., core=...): a check of the support matrix (tests/matrix)')


def pytest_collection_finish(session: pytest.Session) -> None:
    global _LANES
    wanted = _wanted(session.items)
    if not wanted or session.config.option.collectonly:
        return
    workdir = session.config._tmp_path_factory.mktemp('matrix')  # the session's own tmp_path_factory
    _LANES = Lanes(wanted, workdir)
    _LANES.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    # A run that ends before the matrix tests had their results (an interrupt, -x) stops the lanes.
    if _LANES is not None:
        stop_all()
        _LANES.join()


@pytest.fixture(scope='session')
def lanes() -> Lanes:
    assert _LANES is not None, 'the matrix lanes start when tests/matrix tests are collected'
    return _LANES


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _LANES is None or not _LANES.timings:
        return
    terminalreporter.section('support matrix timings')
    for core in sorted(_LANES.timings, key=lambda c: list(BY_CORE).index(c)):
        t = _LANES.timings[core]
        parts = [
            f'ansible-core {core} on Python {t.get("python", "?")}:',
            f'venv {t.get("venv", 0):.0f}s ({"created" if t.get("cold") else "reused"})',
        ]
        parts += [f'{check} {t[check]:.0f}s' for check in CHECKS if check in t]
        terminalreporter.write_line(' '.join(parts))
