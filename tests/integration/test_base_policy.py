"""A pinned base policy (IMAGEGOV_BASE_POLICY) in front of imagegov.openstack.image, for real.

One ansible-playbook run as devcloud-alpha (a project member) with the base policy set in the
controller's environment; each case registers its result, and the tests below judge them:

- an overlay (option policy) that waives a locked rule stops the task before the module runs;
- an overlay may add a rule, which refuses a request;
- an overlay may set an unlocked base rule to warn: its violation becomes a warning;
- an exception in the base's own exception source waives the locked rule; without it, the
  refusal says the rule is locked by the organisation's base policy.

Refusals happen before any request reaches Glance; the two images the cases create are
deleted in the play's always section.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import uuid
from pathlib import Path

import pytest
from playbook_runner import run_playbook

HERE = Path(__file__).resolve().parent
PARITY_POLICY = HERE / 'policies' / 'glance-parity.yml'

BASE_POLICY = """\
version: 1
exception_sources: [exceptions/]
rules:
  - id: org-max-size
    description: The organisation's size cap (about 1 MiB here, so that a 2 MiB disk exceeds it).
    type: max_size
    locked: true
    params: {max_gib: 0.001}
  - id: org-formats
    type: allowed_formats
    params: {disk_formats: [qcow2]}
"""

GRANTED_EXCEPTION = """\
version: 1
exceptions:
  - id: org-granted-size
    rules: [org-max-size]
    match: {names: ['%(prefix)s-granted']}
    reason: Granted by the security team.
    owner: security-team
    expires: '%(expires)s'
"""

OVERLAYS = {
    'waive-locked.yml': """\
version: 1
exceptions:
  - id: team-wants-big-disks
    rules: [org-max-size]
    reason: We want bigger disks.
    owner: app-team
    expires: '%(expires)s'
""",
    'names.yml': """\
version: 1
rules:
  - id: team-names
    type: name_pattern
    params: {pattern: '%(prefix)s-app-.*'}
""",
    'warn-formats.yml': """\
version: 1
rules:
  - id: org-formats
    type: allowed_formats
    mode: warn
    params: {disk_formats: [qcow2]}
""",
}

PLAYBOOK = """\
- name: Base policy cases
  hosts: localhost
  gather_facts: false
  module_defaults:
    imagegov.openstack.image: {cloud: devcloud-alpha}
  tasks:
    - name: Cases
      block:
        - name: (a) an overlay waiving the locked rule
          imagegov.openstack.image:
            name: "{{ prefix }}-waived"
            filename: "{{ work }}/disk2m.qcow2"
            disk_format: qcow2
            policy: ["{{ work }}/overlay/waive-locked.yml"]
          register: waive_locked
          ignore_errors: true
        - name: (b) an overlay adding a naming rule
          imagegov.openstack.image:
            name: "{{ prefix }}-misnamed"
            filename: "{{ work }}/small.qcow2"
            disk_format: qcow2
            policy: ["{{ work }}/overlay/names.yml"]
          register: added_rule
          ignore_errors: true
        - name: (c) an overlay setting the unlocked format rule to warn
          imagegov.openstack.image:
            name: "{{ prefix }}-warned"
            filename: "{{ work }}/small.raw"
            disk_format: raw
            policy: ["{{ work }}/overlay/warn-formats.yml"]
          register: warned
          ignore_errors: true
        - name: (d) the base alone, with its exception source granting this name
          imagegov.openstack.image:
            name: "{{ prefix }}-granted"
            filename: "{{ work }}/disk2m.qcow2"
            disk_format: qcow2
          register: granted
          ignore_errors: true
        - name: (d) the base alone, a name its exception does not grant
          imagegov.openstack.image:
            name: "{{ prefix }}-not-granted"
            filename: "{{ work }}/disk2m.qcow2"
            disk_format: qcow2
          register: not_granted
          ignore_errors: true
        - name: What the cloud holds now
          imagegov.openstack.image_info:
            cloud: devcloud-alpha
          register: listed
      always:
        - name: Delete what the cases created
          imagegov.openstack.image:
            cloud: devcloud-alpha
            name: "{{ item }}"
            state: absent
            policy: ["{{ parity_policy }}"]
          loop: ["{{ prefix }}-warned", "{{ prefix }}-granted"]
          register: cleanup
        - name: Keep the results for the tests
          ansible.builtin.copy:
            dest: "{{ work }}/results.json"
            mode: "0644"
            content: >-
              {{ {'waive_locked': waive_locked, 'added_rule': added_rule, 'warned': warned,
                  'granted': granted, 'not_granted': not_granted,
                  'images': listed.images | default([]) | map(attribute='name')
                            | select('match', prefix) | sort,
                  'cleanup': cleanup.results | map(attribute='failed', default=false) | list} | to_json }}
"""


@pytest.fixture(scope='module')
def results(ansible_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp('base_policy')
    prefix = f'it-base-{uuid.uuid4().hex[:6]}'
    values = {'prefix': prefix, 'expires': (datetime.date.today() + datetime.timedelta(days=7)).isoformat()}
    base = work / 'base'
    (base / 'exceptions').mkdir(parents=True)
    (base / 'org.yml').write_text(BASE_POLICY)
    (base / 'exceptions' / 'granted.yml').write_text(GRANTED_EXCEPTION % values)
    (work / 'overlay').mkdir()
    for name, text in OVERLAYS.items():
        (work / 'overlay' / name).write_text(text % values)
    # 512 KiB under the cap; a 2 MiB virtual disk over it.
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(work / 'small.qcow2'), '512K'], check=True)
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(work / 'disk2m.qcow2'), '2M'], check=True)
    (work / 'small.raw').write_bytes(b'\0' * 512 * 1024)
    (work / 'playbook.yml').write_text(PLAYBOOK)
    env = dict(ansible_env, IMAGEGOV_BASE_POLICY=str(base))
    run = run_playbook(
        env,
        work / 'playbook.yml',
        '-e',
        f'prefix={prefix}',
        '-e',
        f'work={work}',
        '-e',
        f'parity_policy={PARITY_POLICY}',
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    found = json.loads((work / 'results.json').read_text())
    found.update(prefix=prefix, base=str(base / 'org.yml'), work=str(work))
    return found


def test_overlay_waiving_a_locked_rule_fails_before_the_module(results: dict) -> None:
    result = results['waive_locked']
    assert result['failed'] is True
    assert 'invocation' not in result and 'policy' not in result  # the module never ran
    assert [problem['text'] for problem in result['problems']] == [
        f"{results['work']}/overlay/waive-locked.yml: exception 'team-wants-big-disks' (exceptions[0]): "
        f"field 'rules[0]': rule 'org-max-size' is locked by {results['base']}; exceptions to it are read "
        f'only from: {Path(results["base"]).parent / "exceptions"}'
    ]
    assert 'Nothing was sent to the cloud' in result['msg'] and 'IMAGEGOV_BASE_POLICY' in result['msg']
    assert f'{results["prefix"]}-waived' not in results['images']


def test_overlay_rule_refuses(results: dict) -> None:
    result = results['added_rule']
    assert result['failed'] is True and result['changed'] is False
    [decision] = result['policy']['decisions']
    assert [violation['rule'] for violation in decision['violations']] == ['team-names']
    assert '[team-names]' in result['msg'] and 'Nothing was changed' in result['msg']
    assert f'{results["prefix"]}-misnamed' not in results['images']


def test_overlay_sets_an_unlocked_base_rule_to_warn(results: dict) -> None:
    result = results['warned']
    assert result.get('failed') is not True and result['changed'] is True
    assert result['policy']['allowed'] is True
    violations = [violation for decision in result['policy']['decisions'] for violation in decision['violations']]
    assert {(violation['rule'], violation['mode']) for violation in violations} == {('org-formats', 'warn')}
    assert any('policy rule org-formats' in warning and 'raw' in warning for warning in result['warnings'])
    assert f'{results["prefix"]}-warned' in results['images']


def test_base_exception_source_waives_the_locked_rule(results: dict) -> None:
    granted = results['granted']
    assert granted.get('failed') is not True and granted['changed'] is True
    waived = [violation for decision in granted['policy']['decisions'] for violation in decision['violations']]
    assert waived and {violation['rule'] for violation in waived} == {'org-max-size'}
    assert all(
        violation['locked'] is True
        and violation['exception']['id'] == 'org-granted-size'
        and violation['exception']['status'] == 'applied'
        for violation in waived
    )
    refused = results['not_granted']
    assert refused['failed'] is True
    assert '[org-max-size]' in refused['msg']
    assert f"rule locked by the organisation's base policy {results['base']}" in refused['msg']
    assert results['images'] == sorted([f'{results["prefix"]}-granted', f'{results["prefix"]}-warned'])
    assert results['cleanup'] == [False, False]
