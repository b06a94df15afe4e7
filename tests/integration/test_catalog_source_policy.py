"""Image files of a catalog stay in its repository unless source_roots allows a directory.

Runs the catalog module and the catalog role (check mode: a plan, nothing uploaded) through
ansible-playbook against the local cloud: a file outside the catalog's repository is refused
before any cloud request, with the exact problem; the module option ``source_roots`` (given
relative, so the action plugin resolves it on the controller) and the role variable
``catalog_source_roots`` allow it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from playbook_runner import run_playbook

HERE = Path(__file__).resolve().parent
PARITY_POLICY = HERE / 'policies' / 'glance-parity.yml'
DISK = b'\0' * 65536

CATALOG = """\
version: 1
images:
  - name: {name}
    source: {{file: ../../outside/disk.raw}}
    sha256: {sha256}
    disk_format: raw
"""

PLAYBOOK = r"""
- name: Where catalog image files may come from
  hosts: localhost
  gather_facts: false
  tasks:
    - name: A file outside the catalog's repository is refused
      imagegov.openstack.catalog:
        cloud: devcloud-alpha
        catalog: ["{{ catalog }}"]
        name: "{{ prefix }}"
        policy: ["{{ policy }}"]
      check_mode: true
      register: refused
      ignore_errors: true

    - name: The module option allows its directory (given relative to where ansible-playbook runs)
      imagegov.openstack.catalog:
        cloud: devcloud-alpha
        catalog: ["{{ catalog }}"]
        source_roots: [outside]
        name: "{{ prefix }}"
        policy: ["{{ policy }}"]
      check_mode: true
      register: allowed

    - name: So does the role variable
      ansible.builtin.include_role:
        name: imagegov.openstack.catalog
      vars:
        catalog_paths: ["{{ catalog }}"]
        catalog_source_roots: ["{{ outside }}"]
        catalog_name: "{{ prefix }}"
        catalog_cloud: devcloud-alpha
        catalog_policy: ["{{ policy }}"]
        catalog_report_dir: "{{ reports }}"

    - name: Keep the results
      ansible.builtin.copy:
        dest: "{{ results }}"
        mode: "0600"
        content: "{{ {'refused': refused, 'allowed': allowed, 'role': catalog_plan} | to_json }}"
"""


def test_source_files_are_confined_unless_allowed(ansible_env: dict[str, str], tmp_path: Path) -> None:
    tmp = tmp_path.resolve()
    prefix = f'it-sources-{uuid.uuid4().hex[:6]}'
    (tmp / 'repo' / '.git').mkdir(parents=True)
    (tmp / 'repo' / 'catalog').mkdir()
    (tmp / 'outside').mkdir()
    (tmp / 'outside' / 'disk.raw').write_bytes(DISK)
    catalog = tmp / 'repo' / 'catalog' / 'gold.yml'
    catalog.write_text(CATALOG.format(name=f'{prefix}-disk', sha256=hashlib.sha256(DISK).hexdigest()), encoding='utf-8')
    playbook = tmp / 'sources.yml'
    playbook.write_text(PLAYBOOK, encoding='utf-8')
    results = tmp / 'results.json'
    extra = {
        'catalog': str(catalog),
        'prefix': prefix,
        'policy': str(PARITY_POLICY),
        'outside': str(tmp / 'outside'),
        'reports': str(tmp / 'reports'),
        'results': str(results),
    }
    run = run_playbook(ansible_env, playbook, '-e', json.dumps(extra), timeout=600, cwd=tmp)
    assert run.returncode == 0, (run.stdout + run.stderr)[-8000:]
    found = json.loads(results.read_text(encoding='utf-8'))

    problem = (
        f"{catalog}:3: image '{prefix}-disk' (images[0]): field 'source.file': '../../outside/disk.raw' "
        f"resolves to '{tmp}/outside/disk.raw', outside the catalog repository '{tmp}/repo'; move the image "
        'into the catalog repository, or allow its directory with option source_roots'
    )
    refused = found['refused']
    assert refused['failed'] is True
    assert [entry['text'] for entry in refused['problems']] == [problem]
    assert refused['problems'][0]['field'] == 'source.file'
    assert refused['msg'] == f'1 problem in catalog:\n  - {problem}\nNothing was sent to the cloud.'

    for result in (found['allowed'], found['role']):
        assert not result.get('failed'), result.get('msg')
        assert result['summary'] == {'create': 1}
        assert [item['name'] for item in result['plan']] == [f'{prefix}-disk']
        assert result['plan'][0]['origin'] == f'{catalog}:3'


URL_CATALOG = """\
version: 1
defaults: {{disk_format: raw}}
images:
  - name: {prefix}-gold
    source: {{url: "{base}/gold/disk.raw"}}
    sha256: {sha256}
  - name: {prefix}-other
    source: {{url: "{base}/gold/../other/disk.raw"}}
    sha256: {sha256}
"""

URL_POLICY = """\
version: 1
rules:
  - id: gold-sources
    type: allowed_sources
    params: {{url_prefixes: ['{base}/gold/']}}
"""

URL_PLAYBOOK = r"""
- name: URL sources under an allowed_sources policy
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Plan a catalog with one URL under the allowed prefix and one that only looks like it
      imagegov.openstack.catalog:
        cloud: devcloud-alpha
        catalog: ["{{ catalog }}"]
        name: "{{ prefix }}"
        policy: ["{{ policy }}"]
      check_mode: true
      register: plan
      ignore_errors: true

    - name: Keep the result
      ansible.builtin.copy:
        dest: "{{ results }}"
        mode: "0600"
        content: "{{ plan | to_json }}"
"""


def test_url_sources_outside_the_policy_prefixes_are_refused(
    ansible_env: dict[str, str], http_root: tuple[Path, str], tmp_path: Path
) -> None:
    root, base_url = http_root
    prefix = f'it-sources-{uuid.uuid4().hex[:6]}'
    for directory in ('gold', 'other'):
        (root / prefix / directory).mkdir(parents=True)
        (root / prefix / directory / 'disk.raw').write_bytes(DISK)
    base = f'{base_url}/{prefix}'
    tmp = tmp_path.resolve()
    catalog, policy, playbook, results = (tmp / 'urls.yml', tmp / 'policy.yml', tmp / 'play.yml', tmp / 'results.json')
    catalog.write_text(
        URL_CATALOG.format(prefix=prefix, base=base, sha256=hashlib.sha256(DISK).hexdigest()), encoding='utf-8'
    )
    policy.write_text(URL_POLICY.format(base=base), encoding='utf-8')
    playbook.write_text(URL_PLAYBOOK, encoding='utf-8')
    extra = {'catalog': str(catalog), 'policy': str(policy), 'prefix': prefix, 'results': str(results)}
    run = run_playbook(ansible_env, playbook, '-e', json.dumps(extra), timeout=600, cwd=tmp)
    assert run.returncode == 0, (run.stdout + run.stderr)[-8000:]
    plan = json.loads(results.read_text(encoding='utf-8'))

    assert plan['failed'] is True
    assert plan['summary'] == {'create': 1, 'refused': 1}
    gold, other = plan['plan']
    assert (gold['name'], gold['action']) == (f'{prefix}-gold', 'create')
    assert (other['name'], other['action']) == (f'{prefix}-other', 'refused')
    assert 'gold-sources' in other['reason']
    assert (
        f"source URL '{base}/gold/../other/disk.raw' is not under an allowed prefix; use a URL under one of: "
        f'{base}/gold/'
    ) in other['reason']
    assert 'Nothing was changed' in plan['msg']
