"""Planted secrets never come out: a real password, a real token and a URL with credentials
and a signed query string go into the modules, and every output is searched for them.

The password is devcloud-alpha's own, given as a dict-valued ``cloud`` and ``usage_cloud``;
the token is a real Keystone token for the same user, given as ``auth_type: token``. The
URL is served by the test's HTTP server, which ignores both the credentials and the query,
so the downloads succeed (or answer 404 where the test asks for it).

Outputs searched: stdout and stderr of ``ansible-playbook -vvv``; every file ansible-runner
leaves in its artifact directory (job events, stdout, command...) for the same playbook run
the way AWX runs it; the catalog's report files; and every registered task result, written
to files with ``to_nice_json`` as a playbook author would.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from devcloud_state import REPO
from playbook_runner import run_playbook

HERE = Path(__file__).resolve().parent
PARITY_POLICY = HERE / 'policies' / 'glance-parity.yml'
DEFAULT_POLICY = REPO / 'policies' / 'default.yml'
URL_USER = 'planted-user'
URL_PASSWORD = 'S3cretPlanted'
URL_SIGNATURE = 'PlantedSig0123456789'
RESULT_NAMES = [
    'upload',
    'missing',
    'refused',
    'token_info',
    'info',
    'usage',
    'catalog_plan',
    'catalog_refused',
    'catalog_missing',
    'catalog_bad_url',
]
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
# From ansible-core 2.21 a task result carries the module's invocation (its arguments, as
# masked) only when INJECT_INVOCATION is on: on here, so that they are there to be searched.
SHOW_INVOCATION = {'ANSIBLE_INJECT_INVOCATION': 'true'}

PLAYBOOK = r"""
- name: Planted secrets
  hosts: localhost
  gather_facts: false
  vars_files: ["{{ secrets_file }}"]
  tasks:
    - name: The modules, given every secret
      block:
        - name: Upload from a URL with credentials and a signed query, as a dict-valued cloud
          imagegov.openstack.image:
            cloud: "{{ alpha_cloud }}"
            name: "{{ prefix }}-up"
            url: "{{ signed_url }}"
            import_method: put
            disk_format: qcow2
            policy: ["{{ parity_policy }}"]
          register: upload

        - name: The same credentials and query on a URL that answers 404
          imagegov.openstack.image:
            cloud: "{{ alpha_cloud }}"
            name: "{{ prefix }}-missing"
            url: "{{ missing_url }}"
            disk_format: qcow2
            policy: ["{{ parity_policy }}"]
          register: missing
          ignore_errors: true

        - name: A refusal of the default policy, after reading the signed URL
          imagegov.openstack.image:
            cloud: "{{ alpha_cloud }}"
            name: "{{ prefix }}-public"
            url: "{{ signed_url }}"
            disk_format: qcow2
            visibility: public
            policy: ["{{ default_policy }}"]
          register: refused
          ignore_errors: true

        - name: Image info with a token
          imagegov.openstack.image_info:
            cloud: "{{ token_cloud }}"
            name: "{{ prefix }}-up"
          register: token_info

        - name: Image info with the password
          imagegov.openstack.image_info:
            cloud: "{{ alpha_cloud }}"
            name: "{{ prefix }}-up"
          register: info

        - name: Usage with usage_cloud as a dict
          imagegov.openstack.image_usage_info:
            cloud: "{{ token_cloud }}"
            usage_cloud: "{{ alpha_cloud }}"
            image: "{{ prefix }}-up"
          register: usage

        - name: Catalog plan with a signed URL source, writing every report
          imagegov.openstack.catalog:
            cloud: "{{ alpha_cloud }}"
            usage_cloud: "{{ alpha_cloud }}"
            catalog: ["{{ work_dir }}/catalog-plan.yml"]
            name: "{{ prefix }}"
            policy: ["{{ parity_policy }}"]
            report_plan: "{{ out_dir }}/reports-plan/plan.json"
            report_json: "{{ out_dir }}/reports-plan/policy.json"
            report_junit: "{{ out_dir }}/reports-plan/policy.xml"
            report_sarif: "{{ out_dir }}/reports-plan/policy.sarif"
          check_mode: true
          register: catalog_plan

        - name: Catalog plan the default policy refuses, writing every report
          imagegov.openstack.catalog:
            cloud: "{{ alpha_cloud }}"
            usage_cloud: "{{ alpha_cloud }}"
            catalog: ["{{ work_dir }}/catalog-public.yml"]
            name: "{{ prefix }}"
            policy: ["{{ default_policy }}"]
            report_plan: "{{ out_dir }}/reports-refused/plan.json"
            report_json: "{{ out_dir }}/reports-refused/policy.json"
            report_junit: "{{ out_dir }}/reports-refused/policy.xml"
            report_sarif: "{{ out_dir }}/reports-refused/policy.sarif"
          check_mode: true
          register: catalog_refused
          ignore_errors: true

        - name: Catalog plan whose URL source answers 404
          imagegov.openstack.catalog:
            cloud: "{{ alpha_cloud }}"
            catalog: ["{{ work_dir }}/catalog-missing.yml"]
            name: "{{ prefix }}"
            policy: ["{{ parity_policy }}"]
            report_plan: "{{ out_dir }}/reports-missing/plan.json"
          check_mode: true
          register: catalog_missing
          ignore_errors: true

        - name: Catalog whose URL the catalog schema rejects (not http or https)
          imagegov.openstack.catalog:
            cloud: "{{ alpha_cloud }}"
            catalog: ["{{ work_dir }}/catalog-bad-url.yml"]
            name: "{{ prefix }}"
            policy: ["{{ parity_policy }}"]
          check_mode: true
          register: catalog_bad_url
          ignore_errors: true

      always:
        - name: Keep every registered result, as a playbook author would
          ansible.builtin.copy:
            content: "{{ lookup('ansible.builtin.vars', item, default={}) | to_nice_json }}"
            dest: "{{ out_dir }}/results/{{ item }}.json"
            mode: "0600"
          loop: "{{ result_names }}"

        - name: Clean up as the admin
          imagegov.openstack.image:
            cloud: devcloud-admin
            name: "{{ prefix }}-{{ item }}"
            owner: alpha
            state: absent
            policy: ["{{ parity_policy }}"]
          loop: [up, missing, public]
"""

CATALOG = """\
version: 1
images:
  - name: {name}
    source: {{url: "{url}"}}
    sha256: {sha256}
    disk_format: qcow2
    visibility: {visibility}
"""


@dataclass(repr=False)
class Planted:
    """The planted values; never in a repr, so pytest's own failure report cannot leak them."""

    alpha: dict
    password: str
    token: str
    project_id: str

    def __repr__(self) -> str:
        return '<Planted: password, token, URL password, URL signature>'

    def values(self) -> dict[str, str]:
        return {
            'alpha password': self.password,
            'alpha token': self.token,
            'URL password': URL_PASSWORD,
            'URL signature': URL_SIGNATURE,
        }

    def hide(self, shown: object) -> str:
        """A failure message of this test without the planted values in it."""
        text = shown if isinstance(shown, str) else json.dumps(shown, indent=1, default=str)
        for name, value in self.values().items():
            text = text.replace(value, f'<<planted {name}>>')
        return text


@pytest.fixture(scope='module')
def planted(devcloud: Path):
    alpha = yaml.safe_load(devcloud.read_text())['clouds']['devcloud-alpha']
    auth = alpha['auth']
    response = requests.post(
        f'{auth["auth_url"]}/auth/tokens',
        timeout=30,
        json={
            'auth': {
                'identity': {
                    'methods': ['password'],
                    'password': {
                        'user': {
                            'name': auth['username'],
                            'password': auth['password'],
                            'domain': {'name': auth['user_domain_name']},
                        }
                    },
                },
                'scope': {'project': {'name': auth['project_name'], 'domain': {'name': auth['project_domain_name']}}},
            }
        },
    )
    assert response.status_code == 201, response.text
    token = response.headers['X-Subject-Token']
    secret = Planted(alpha, auth['password'], token, response.json()['token']['project']['id'])
    yield secret
    requests.delete(
        f'{auth["auth_url"]}/auth/tokens', timeout=30, headers={'X-Auth-Token': token, 'X-Subject-Token': token}
    )


def _secrets_file(path: Path, secret: Planted, base_url: str, prefix: str) -> Path:
    alpha = secret.alpha
    scheme, _separator, host_and_path = base_url.partition('://')
    signed_base = f'{scheme}://{URL_USER}:{URL_PASSWORD}@{host_and_path}/{prefix}'
    query = f'X-Signature={URL_SIGNATURE}&X-Expires=1893456000'
    common = {k: alpha[k] for k in ('region_name', 'interface', 'identity_api_version')}
    variables = {
        'alpha_cloud': dict(common, auth=dict(alpha['auth'])),
        'token_cloud': dict(
            common,
            auth_type='token',
            auth={'auth_url': alpha['auth']['auth_url'], 'token': secret.token, 'project_id': secret.project_id},
        ),
        'signed_url': f'{signed_base}/file.qcow2?{query}',
        'missing_url': f'{signed_base}/missing.qcow2?{query}',
    }
    path.write_text(json.dumps(variables))
    return path


def _work(root: Path, base_url: str, prefix: str, secret: Planted, private: Path) -> dict[str, str]:
    """The served image in ``root``, the catalogs naming it by its signed URL, and the
    playbook's variables; the secrets and the outputs in ``private``, which is not served."""
    work_dir = root / prefix
    work_dir.mkdir()
    raw = work_dir / 'file.raw'
    raw.write_bytes(b'\x01' * 65536)
    subprocess.run(
        ['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', str(raw), str(work_dir / 'file.qcow2')],
        check=True,
        capture_output=True,
    )
    sha256 = hashlib.sha256((work_dir / 'file.qcow2').read_bytes()).hexdigest()
    secrets_file = _secrets_file(private / 'secrets.json', secret, base_url, prefix)
    urls = json.loads(secrets_file.read_text())
    bad_url = urls['signed_url'].replace('http://', 'ftp://', 1)
    for catalog, name, url, visibility in (
        ('plan', 'cat', urls['signed_url'], 'private'),
        ('public', 'cat-public', urls['signed_url'], 'public'),
        ('missing', 'cat-missing', urls['missing_url'], 'private'),
        ('bad-url', 'cat-bad', bad_url, 'private'),
    ):
        (work_dir / f'catalog-{catalog}.yml').write_text(
            CATALOG.format(name=f'{prefix}-{name}', url=url, sha256=sha256, visibility=visibility)
        )
    out_dir = private / 'out'
    (out_dir / 'results').mkdir(parents=True)
    return {
        'secrets_file': str(secrets_file),
        'prefix': prefix,
        'work_dir': str(work_dir),
        'out_dir': str(out_dir),
        'parity_policy': str(PARITY_POLICY),
        'default_policy': str(DEFAULT_POLICY),
        'result_names': RESULT_NAMES,
    }


def _files(directory: Path) -> list[tuple[str, str]]:
    return [(str(path), path.read_text(errors='replace')) for path in sorted(directory.rglob('*')) if path.is_file()]


def _results(out_dir: Path) -> dict[str, dict]:
    return {name: json.loads((out_dir / 'results' / f'{name}.json').read_text()) for name in RESULT_NAMES}


def _check(condition: bool, shown: object, secret: Planted) -> None:
    """An assert whose failure shows ``shown`` without the planted values: pytest's own
    explanation of a failed assert would print the values compared (outputs included)."""
    __tracebackhide__ = True
    if not condition:
        pytest.fail(secret.hide(shown), pytrace=False)


def _assert_the_tasks_ran(results: dict[str, dict], out_dir: Path, prefix: str, secret: Planted) -> None:
    """Not vacuous: the upload, the refusal and the failures all happened, and the redacted
    URL is what people see instead."""
    __tracebackhide__ = True  # pytest would show the arguments, results included

    def check(condition: bool, shown: object) -> None:
        _check(condition, shown, secret)

    upload = results['upload']
    check(upload.get('changed') is True and bool(upload.get('id')), upload)
    check(upload['image']['status'] == 'active', upload['image'])
    shown = [op for op in upload['operations'] if op.startswith('upload')]
    check(bool(shown) and all("'http://***@127.0.0.1:" in op and "/file.qcow2?***'" in op for op in shown), shown)

    missing = results['missing']
    check(missing.get('failed') is True and 'HTTP 404' in missing['msg'], missing)
    check(f'/{prefix}/missing.qcow2?***' in missing['msg'], missing['msg'])
    refused = results['refused']
    check(refused.get('failed') is True and 'public-images-admin-only' in refused['msg'], refused)

    check([i['id'] for i in results['token_info']['images']] == [upload['id']], results['token_info'])
    check([i['id'] for i in results['info']['images']] == [upload['id']], results['info'])
    check(results['usage']['asked_as']['user'] == 'alpha-member', results['usage'])
    check(results['usage']['image']['id'] == upload['id'], results['usage'])

    plan = results['catalog_plan']
    check(plan.get('failed') is not True and plan['summary'] == {'create': 1}, plan)
    reports = sorted(p.name for p in (out_dir / 'reports-plan').iterdir())
    check(reports == ['plan.json', 'policy.json', 'policy.sarif', 'policy.xml'], reports)
    catalog_refused = results['catalog_refused']
    check(catalog_refused.get('failed') is True and catalog_refused['summary'].get('refused') == 1, catalog_refused)
    sarif = json.loads((out_dir / 'reports-refused' / 'policy.sarif').read_text())
    errors = [r['ruleId'] for r in sarif['runs'][0]['results'] if r['level'] == 'error']
    check(errors == ['public-images-admin-only'], sarif)
    catalog_missing = results['catalog_missing']
    check(catalog_missing.get('failed') is True and 'HTTP 404' in catalog_missing['msg'], catalog_missing)
    bad = results['catalog_bad_url']
    check(bad.get('failed') is True and 'http:// or https://' in bad['msg'], bad)
    check(all("got 'ftp://***@127.0.0.1:" in problem['text'] for problem in bad['problems']), bad)


def _assert_no_leak(outputs: list[tuple[str, str]], secret: Planted) -> None:
    __tracebackhide__ = True  # pytest would show the arguments, the outputs included
    _check(bool(outputs) and all(text for _label, text in outputs[:2]), 'nothing was captured', secret)
    leaks = [(label, name) for label, text in outputs for name, value in secret.values().items() if value in text]
    details = '\n'.join(
        f'{name} in {label}: ...{secret.hide(_around(text, secret.values()[name]))}...'
        for label, name in leaks
        for lab, text in outputs
        if lab == label
    )
    assert not leaks, f'planted secrets leaked:\n{details}'
    searched: dict[str, list[int]] = {}
    for label, text in outputs:
        searched.setdefault(str(Path(label).parent) if label.startswith('/') else label, []).append(len(text))
    print(
        f'{len(outputs)} outputs searched for {len(secret.values())} planted values:',
        *(f'  {where}: {len(sizes)} file(s), {sum(sizes)} characters' for where, sizes in searched.items()),
        sep='\n',
    )


def _around(text: str, value: str, width: int = 160) -> str:
    at = text.find(value)
    return text[max(0, at - width) : at + len(value) + width]


def _cleanup(ansible_env: dict[str, str], prefix: str) -> None:
    """Whatever the playbook's own clean-up missed, when it did not get that far."""
    from openstack.config import OpenStackConfig
    from openstack.connection import Connection

    conn = Connection(
        config=OpenStackConfig(config_files=[ansible_env['OS_CLIENT_CONFIG_FILE']]).get_one(cloud='devcloud-admin')
    )
    for hidden in (False, True):
        for image in conn.image.images(visibility='all', is_hidden=hidden):
            if image.name and image.name.startswith(f'{prefix}-'):
                if image.is_protected:
                    conn.image.update_image(image, is_protected=False)
                conn.image.delete_image(image, ignore_missing=True)


def test_planted_secrets_stay_out_of_ansible_playbook_output(
    planted, ansible_env: dict[str, str], http_root: tuple[Path, str], tmp_path: Path
) -> None:
    secret = planted
    root, base_url = http_root
    prefix = f'it-secrets-{uuid.uuid4().hex[:6]}'
    extravars = _work(root, base_url, prefix, secret, tmp_path)
    playbook = tmp_path / 'secrets.yml'
    playbook.write_text(PLAYBOOK)
    (tmp_path / 'vars.json').write_text(json.dumps(extravars))
    try:
        run = run_playbook({**ansible_env, **SHOW_INVOCATION}, playbook, '-vvv', '-e', f'@{tmp_path / "vars.json"}')
    finally:
        _cleanup(ansible_env, prefix)
    out_dir = Path(extravars['out_dir'])
    _check(run.returncode == 0 and 'failed=0' in run.stdout, (run.stdout + run.stderr)[-20000:], secret)
    _check('ignored=5' in run.stdout, run.stdout[-3000:], secret)
    _assert_the_tasks_ran(_results(out_dir), out_dir, prefix, secret)
    # -vvv prints each module's arguments: the dict-valued clouds were shown, masked.
    _check(
        run.stdout.count('"password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"') >= 5
        and '"token": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in run.stdout,
        run.stdout[-5000:],
        secret,
    )
    outputs = [('ansible-playbook -vvv stdout', run.stdout), ('ansible-playbook -vvv stderr', run.stderr)]
    _assert_no_leak(outputs + _files(out_dir), secret)


def test_planted_secrets_stay_out_of_ansible_runner_events(
    planted, ansible_env: dict[str, str], http_root: tuple[Path, str], tmp_path: Path
) -> None:
    ansible_runner = pytest.importorskip('ansible_runner', reason='ansible-runner is in tests/requirements.txt')
    secret = planted
    root, base_url = http_root
    prefix = f'it-secrets-{uuid.uuid4().hex[:6]}'
    extravars = _work(root, base_url, prefix, secret, tmp_path)
    pdd = tmp_path / 'runner'
    (pdd / 'project').mkdir(parents=True)
    (pdd / 'project' / 'secrets.yml').write_text(PLAYBOOK)
    (pdd / 'inventory').mkdir()
    (pdd / 'inventory' / 'hosts').write_text(
        f'localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n'
    )
    (pdd / 'env').mkdir()
    envvars = {k: ansible_env[k] for k in ENV_PASSED if k in ansible_env}
    (pdd / 'env' / 'envvars').write_text(yaml.safe_dump({**envvars, **SHOW_INVOCATION}))
    (pdd / 'env' / 'extravars').write_text(yaml.safe_dump(extravars))
    try:
        runner = ansible_runner.run(
            private_data_dir=str(pdd), playbook='secrets.yml', ident='secrets', verbosity=3, quiet=True
        )
    finally:
        _cleanup(ansible_env, prefix)
    artifacts = pdd / 'artifacts' / 'secrets'
    out_dir = Path(extravars['out_dir'])
    _check((runner.status, runner.rc) == ('successful', 0), (artifacts / 'stdout').read_text()[-20000:], secret)
    events = list(runner.events)
    assert len(list((artifacts / 'job_events').glob('*.json'))) == len(events)
    failed = [e['event_data'].get('task') for e in events if e['event'] == 'runner_on_failed']
    _check(len(failed) == 5, failed, secret)
    _assert_the_tasks_ran(_results(out_dir), out_dir, prefix, secret)
    invocations = [
        e['event_data']['res']['invocation']['module_args']
        for e in events
        if e['event'] in ('runner_on_ok', 'runner_on_failed')
        and isinstance(e['event_data'].get('res', {}).get('invocation'), dict)
        and isinstance(e['event_data']['res']['invocation']['module_args'].get('cloud'), dict)
    ]
    _check(
        len(invocations) >= 10
        and all(
            'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
            in (a['cloud']['auth'].get('password') or a['cloud']['auth'].get('token'))
            for a in invocations
        ),
        invocations,
        secret,
    )
    outputs = [
        ('ansible-runner stdout', runner.stdout.read()),
        ('ansible-runner events', '\n'.join(json.dumps(e) for e in events)),
    ]
    _assert_no_leak(outputs + _files(artifacts) + _files(out_dir), secret)
