"""The gitops example's playbook run the way AWX runs a job: through ansible-runner.

A private data directory holds ``project/`` (a copy of ``examples/gitops`` with its image
files generated), ``inventory/hosts``, ``env/extravars`` and ``env/envvars``; each
``ansible_runner.run()`` leaves its events and artifacts under ``artifacts/<ident>/``, which
is what AWX stores and shows. The policy is the example's own: the collection's default
policy plus ``examples/gitops/policy/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from devcloud_state import REPO, STATE_DIR

ansible_runner = pytest.importorskip('ansible_runner', reason='ansible-runner is in tests/requirements.txt')

EXAMPLE = REPO / 'examples' / 'gitops'
CLOUD = 'devcloud-alpha'
PLAN_TASK = 'Plan - validate the catalog and ask the policy about every change'
APPLY_TASK = 'Apply the plan'
CATALOG_IMAGES = ['acme-debian-12', 'acme-rescue', 'acme-ubuntu-24.04-20261101', 'acme-ubuntu-24.04-20261015']
BAD_NAME = 'Acme_Windows'
ENV_PASSED = (
    'PATH',
    'ANSIBLE_COLLECTIONS_PATH',
    'ANSIBLE_COLLECTIONS_SCAN_SYS_PATH',
    'ANSIBLE_PYTHON_INTERPRETER',
    'ANSIBLE_NOCOLOR',
    'ANSIBLE_FORCE_COLOR',
    'ANSIBLE_DEPRECATION_WARNINGS',
    'OS_CLIENT_CONFIG_FILE',
    'IMAGEGOV_DEVCLOUD_DIR',
)


def _openstack(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(STATE_DIR / 'venv' / 'bin' / 'openstack'), '--os-cloud', CLOUD, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def _images(env: dict[str, str]) -> dict[str, str]:
    """Name -> id of the example's images in project alpha, hidden ones included."""
    found = {}
    for hidden in ([], ['--hidden']):
        for image in json.loads(_openstack(env, 'image', 'list', '--private', *hidden, '-f', 'json')):
            if image['Name'] in CATALOG_IMAGES or image['Name'].startswith(('acme-', BAD_NAME)):
                found[image['Name']] = image['ID']
    return found


def _delete_images(env: dict[str, str]) -> None:
    for image_id in _images(env).values():
        _openstack(env, 'image', 'delete', image_id)


@pytest.fixture
def private_data_dir(tmp_path: Path, ansible_env: dict[str, str]):
    pdd = tmp_path / 'runner'
    project = pdd / 'project'
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns('*.qcow2', '*.raw', 'reports', '__pycache__'))
    subprocess.run(
        [sys.executable, str(project / 'images' / 'make_example_images.py')], check=True, capture_output=True
    )
    (pdd / 'inventory').mkdir()
    (pdd / 'inventory' / 'hosts').write_text(
        f'localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n'
    )
    (pdd / 'env').mkdir()
    envvars = {name: ansible_env[name] for name in ENV_PASSED if name in ansible_env}
    (pdd / 'env' / 'envvars').write_text(yaml.safe_dump(envvars))
    _delete_images(ansible_env)
    try:
        yield pdd
    finally:
        _delete_images(ansible_env)


def _run(pdd: Path, ident: str, extravars: dict, playbook: str = 'reconcile.yml'):
    (pdd / 'env' / 'extravars').write_text(yaml.safe_dump(extravars))
    started = time.monotonic()
    runner = ansible_runner.run(private_data_dir=str(pdd), playbook=playbook, ident=ident, quiet=True)
    print(f'ansible_runner.run {ident}: {time.monotonic() - started:.2f} s, status {runner.status}, rc {runner.rc}')
    return runner


def _check_artifacts(pdd: Path, ident: str, runner, status: str, rc: int) -> None:
    artifacts = pdd / 'artifacts' / ident
    assert Path(runner.config.artifact_dir) == artifacts
    assert (artifacts / 'status').read_text().strip() == status
    assert (artifacts / 'rc').read_text().strip() == str(rc)
    assert 'PLAY RECAP' in (artifacts / 'stdout').read_text()
    events = [json.loads(p.read_text()) for p in (artifacts / 'job_events').glob('*.json')]
    assert {e['event'] for e in events} >= {'playbook_on_start', 'playbook_on_stats'}
    assert len(events) == len(list(runner.events))


def _task_results(runner, task: str, event: str = 'runner_on_ok') -> list[dict]:
    return [
        e['event_data'].get('res', {})
        for e in runner.events
        if e['event'] == event and e['event_data'].get('task') == task
    ]


def _stats(runner) -> dict:
    stats = [e['event_data'] for e in runner.events if e['event'] == 'playbook_on_stats']
    assert len(stats) == 1
    return stats[0]


def test_plan_apply_reapply_through_ansible_runner(private_data_dir: Path, ansible_env: dict[str, str]) -> None:
    pdd = private_data_dir
    project = pdd / 'project'
    reports = pdd / 'reports'

    # A pull request: plan only. Reports are written, nothing changes in the cloud.
    plan = _run(pdd, 'plan', {'cloud': CLOUD, 'reports_dir': str(reports / 'plan')})
    assert (plan.status, plan.rc) == ('successful', 0), (pdd / 'artifacts' / 'plan' / 'stdout').read_text()
    _check_artifacts(pdd, 'plan', plan, 'successful', 0)
    [planned] = _task_results(plan, PLAN_TASK)
    assert planned['summary'] == {'create': 3, 'noop': 1}
    assert [(item['name'], item['action']) for item in planned['plan']] == [
        ('acme-debian-12', 'create'),
        ('acme-rescue', 'create'),
        ('acme-ubuntu-24.04-20261101', 'create'),
    ]  # the noop item is counted in summary, and listed in the plan report only
    assert len(_task_results(plan, APPLY_TASK, 'runner_on_skipped')) == 1
    assert sorted(p.name for p in (reports / 'plan').iterdir()) == [
        'plan.json',
        'policy.json',
        'policy.sarif',
        'policy.xml',
    ]
    sarif = json.loads((reports / 'plan' / 'policy.sarif').read_text())
    rule_ids = [rule['id'] for rule in sarif['runs'][0]['tool']['driver']['rules']]
    assert {'max-image-size', 'format-integrity', 'acme-image-names', 'acme-image-metadata'} <= set(rule_ids)
    assert sarif['runs'][0]['results'] == []
    report = json.loads((reports / 'plan' / 'plan.json').read_text())
    assert report['summary'] == planned['summary']
    assert ('acme-ubuntu-24.04-20261015', 'noop') in [(item['name'], item['action']) for item in report['plan']]
    assert _images(ansible_env) == {}

    # The merge: apply and prune.
    apply = _run(pdd, 'apply', {'cloud': CLOUD, 'apply': True, 'prune': True, 'reports_dir': str(reports / 'apply')})
    assert (apply.status, apply.rc) == ('successful', 0), (pdd / 'artifacts' / 'apply' / 'stdout').read_text()
    _check_artifacts(pdd, 'apply', apply, 'successful', 0)
    [applied] = _task_results(apply, APPLY_TASK)
    assert applied['changed'] is True
    assert applied['summary'] == {'create': 3, 'noop': 1}
    assert _stats(apply)['changed'] == {'localhost': 2}
    created = _images(ansible_env)
    assert sorted(created) == ['acme-debian-12', 'acme-rescue', 'acme-ubuntu-24.04-20261101']
    shown = json.loads(_openstack(ansible_env, 'image', 'show', created['acme-rescue'], '-f', 'json'))
    assert (shown['disk_format'], shown['properties']['imagegov_catalog']) == ('raw', 'acme-gold')

    # Again, through the collection's own playbook with absolute paths: nothing to do.
    again = _run(
        pdd,
        'reapply',
        {
            'cloud': CLOUD,
            'apply': True,
            'prune': True,
            'catalog_set_name': 'acme-gold',
            'catalog': [str(project / 'catalog')],
            'reports_dir': str(reports / 'reapply'),
            'source_roots': [str(project)],
            'policy': [str(REPO / 'policies' / 'default.yml'), str(project / 'policy')],
        },
        playbook='imagegov.openstack.reconcile',
    )
    assert (again.status, again.rc) == ('successful', 0), (pdd / 'artifacts' / 'reapply' / 'stdout').read_text()
    _check_artifacts(pdd, 'reapply', again, 'successful', 0)
    [replanned] = _task_results(again, PLAN_TASK)
    assert replanned['summary'] == {'noop': 4}
    assert _stats(again)['changed'] == {}
    assert _images(ansible_env) == created


def test_policy_refusal_fails_the_job_with_reports(private_data_dir: Path, ansible_env: dict[str, str]) -> None:
    """An image named against ACME's rule: the job fails, nothing is created, SARIF says why."""
    pdd = private_data_dir
    catalog = pdd / 'project' / 'catalog' / 'windows.yml'
    catalog.write_text(
        yaml.safe_dump(
            {
                'version': 1,
                'images': [
                    {
                        'name': BAD_NAME,
                        'disk_format': 'raw',
                        'source': {'file': '../images/acme-rescue.raw'},
                        'sha256': '30e14955ebf1352266dc2ff8067e68104607e750abb9d3b36582b8af909fcb58',
                        'properties': {'os_distro': 'windows', 'architecture': 'x86_64'},
                    }
                ],
            }
        )
    )
    reports = pdd / 'reports'
    refused = _run(pdd, 'refused', {'cloud': CLOUD, 'apply': True, 'reports_dir': str(reports)})
    assert (refused.status, refused.rc) == ('failed', 2)
    _check_artifacts(pdd, 'refused', refused, 'failed', 2)
    [failed] = _task_results(refused, PLAN_TASK, 'runner_on_failed')
    assert failed['summary']['refused'] == 1
    assert BAD_NAME in failed['msg']
    sarif = json.loads((reports / 'policy.sarif').read_text())
    assert [r['ruleId'] for r in sarif['runs'][0]['results'] if r['level'] == 'error'] == ['acme-image-names']
    assert _images(ansible_env) == {}
