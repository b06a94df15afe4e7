"""The AWX and GitOps examples: the execution environment's build context, the AWX objects
playbook and the CI pipelines, checked without a container runtime, an AWX or a CI server.

- ``ansible-builder create`` writes the build context of ``examples/awx/execution-environment.yml``
  (it needs no container runtime). The collection's Python requirements are read from the
  installed collection during the build, by the context's own ``introspect.py``; that script
  is run here on the collection installed from the same tarball.
- ``examples/awx/job_templates.yml`` needs the ``awx.awx`` collection (not on PyPI) and an AWX:
  it is checked as YAML, for its module names and the arguments AWX requires.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from collection_tree import copy_collection

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AWX = REPO / 'examples' / 'awx'
GITOPS = REPO / 'examples' / 'gitops'
TARBALL = 'imagegov-openstack-0.1.0.tar.gz'
COLLECTION_REQUIREMENTS = ['openstacksdk', 'oslo.utils', 'cerberus', 'jmespath', 'zstandard']
SURVEY_TYPES = {'text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect'}


@pytest.fixture(scope='module')
def ee_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/awx with the collection tarball built beside it, as its README says."""
    root = tmp_path_factory.mktemp('ee')
    copy = copy_collection(root)
    ee = root / 'awx'
    shutil.copytree(AWX, ee)
    subprocess.run(
        [str(BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(ee), str(copy)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (ee / TARBALL).is_file()
    return ee


@pytest.fixture(scope='module')
def context(ee_dir: Path) -> Path:
    result = subprocess.run(
        [
            str(BIN / 'ansible-builder'),
            'create',
            '--file',
            'execution-environment.yml',
            '--context',
            'context',
            '--output-filename',
            'Containerfile',
        ],
        cwd=ee_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return ee_dir / 'context'


def test_builder_context(context: Path) -> None:
    containerfile = (context / 'Containerfile').read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/ansible/awx-ee:' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert re.search(r'ARG ANSIBLE_INSTALL_REFS="ansible-core==[0-9.]+ ansible-runner==[0-9.]+"', containerfile)
    assert 'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml' in containerfile
    assert (
        'introspect.py introspect --write-bindep=/tmp/src/bindep.txt --write-pip=/tmp/src/requirements.txt'
        in containerfile
    )
    assert (context / '_build' / 'collections' / TARBALL).is_file()
    # ACME's base policy is pinned in the image: every job's policy is an overlay on it.
    assert (context / '_build' / 'base-policy' / 'acme-base.yml').is_file()
    assert 'COPY _build/base-policy/ /etc/imagegov/base/\nENV IMAGEGOV_BASE_POLICY=/etc/imagegov/base' in containerfile
    requirements = yaml.safe_load((context / '_build' / 'requirements.yml').read_text())
    assert requirements['collections'] == [{'name': f'/build/collections/{TARBALL}', 'type': 'file'}]


def test_builder_finds_the_collection_requirements(context: Path, tmp_path: Path) -> None:
    """What the build's galaxy and builder stages do: install the tarball, introspect it."""
    collections = tmp_path / 'collections'
    # As in the image build: into an empty path, whatever collections the calling shell points at
    # (./dev test points ANSIBLE_COLLECTIONS_PATH at the working tree, which would satisfy the install).
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_COLLECTIONS')}
    subprocess.run(
        [
            str(BIN / 'ansible-galaxy'),
            'collection',
            'install',
            '--force',
            '--collections-path',
            str(collections),
            str(context / '_build' / 'collections' / TARBALL),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    pip, bindep = tmp_path / 'requirements.txt', tmp_path / 'bindep.txt'
    result = subprocess.run(
        [
            sys.executable,
            str(context / '_build' / 'scripts' / 'introspect.py'),
            'introspect',
            str(collections),
            f'--write-pip={pip}',
            f'--write-bindep={bindep}',
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    names = [re.split(r'[<>=!~ ]', line)[0] for line in pip.read_text().splitlines() if line.strip()]
    assert names == COLLECTION_REQUIREMENTS
    assert all(line.endswith('# from collection imagegov.openstack') for line in pip.read_text().splitlines())
    # install-from-bindep installs bindep's default profile: the [test] packages stay out of the EE.
    listed = subprocess.run(
        [str(BIN / 'bindep'), '--list_all=newline', '--file', str(bindep)], capture_output=True, text=True, check=False
    )
    assert listed.stdout.split() == [], listed.stdout + listed.stderr


def _resolve(value, play_vars: dict):
    """'{{ name }}' of a play variable -> its value (the job templates share survey questions)."""
    match = re.fullmatch(r'\{\{\s*(\w+)\s*\}\}', value) if isinstance(value, str) else None
    return play_vars[match.group(1)] if match else value


def test_awx_job_templates_playbook() -> None:
    [play] = yaml.safe_load((AWX / 'job_templates.yml').read_text())
    tasks = {next(k for k in task if k.startswith('awx.awx.')): task for task in play['tasks']}
    inventories = [t['awx.awx.inventory']['name'] for t in play['tasks'] if 'awx.awx.inventory' in t]
    modules = [next(k for k in task if k.startswith('awx.')) for task in play['tasks']]
    assert set(modules) <= {
        'awx.awx.execution_environment',
        'awx.awx.project',
        'awx.awx.credential',
        'awx.awx.inventory',
        'awx.awx.host',
        'awx.awx.job_template',
        'awx.awx.inventory_source',
    }
    assert all(task['name'] for task in play['tasks'])
    project = tasks['awx.awx.project']['awx.awx.project']
    assert {'name', 'organization', 'scm_type', 'scm_url'} <= set(project)
    credential_task = tasks['awx.awx.credential']
    credential = credential_task['awx.awx.credential']
    assert credential['credential_type'] == 'OpenStack' and credential_task['no_log'] is True
    assert {'host', 'username', 'password', 'project'} <= set(credential['inputs'])
    templates = {
        t['awx.awx.job_template']['name']: t['awx.awx.job_template']
        for t in play['tasks']
        if 'awx.awx.job_template' in t
    }
    assert sorted(templates) == ['Images - apply', 'Images - fleet', 'Images - plan']
    fleet = templates['Images - fleet']
    assert fleet['playbook'] == 'fleet.yml' and fleet['job_slice_count'] == 2
    source = tasks['awx.awx.inventory_source']['awx.awx.inventory_source']
    assert source['inventory'] == fleet['inventory'] and fleet['inventory'] in inventories
    assert source['source'] == 'scm' and source['source_project'] == project['name']
    plugin = yaml.safe_load((GITOPS / source['source_path']).read_text())
    assert plugin['plugin'] == 'imagegov.openstack.clouds' and source['credential'] == credential['name']
    variables = set()
    for template in templates.values():
        playbook = 'fleet.yml' if template is fleet else 'reconcile.yml'
        assert template['playbook'] == playbook and (GITOPS / template['playbook']).is_file()
        assert template['project'] == project['name'] and template['credentials'] == [credential['name']]
        assert template['survey_enabled'] is True
        spec = [_resolve(q, play['vars']) for q in template['survey_spec']['spec']]
        for question in spec:
            assert {'question_name', 'variable', 'type', 'required'} <= set(question)
            assert question['type'] in SURVEY_TYPES
            if question['type'] == 'multiplechoice':
                assert question['default'] in question['choices']
        variables |= {q['variable'] for q in spec}
    assert variables == {'catalog', 'apply', 'prune', 'usage_cloud'}
    assert templates['Images - plan']['extra_vars']['apply'] is False


@pytest.mark.parametrize('playbook', ['reconcile.yml', 'fleet.yml'])
def test_gitops_playbook_syntax(playbook: str, tmp_path: Path) -> None:
    link = tmp_path / 'ansible_collections' / 'imagegov' / 'openstack'
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false')
    result = subprocess.run(
        [str(BIN / 'ansible-playbook'), '--syntax-check', '-i', 'localhost,', playbook],
        cwd=GITOPS,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitops_pipelines() -> None:
    github = yaml.safe_load((GITOPS / '.github' / 'workflows' / 'images.yml').read_text())
    triggers = github[True]  # YAML 1.1 reads the key 'on' as a boolean
    assert 'pull_request' in triggers and triggers['push']['branches'] == ['main']
    steps = [step for job in github['jobs'].values() for step in job['steps']]
    uses = [step.get('uses', '').split('@')[0] for step in steps]
    assert 'github/codeql-action/upload-sarif' in uses and 'actions/upload-artifact' in uses
    runs = '\n'.join(step.get('run', '') for step in steps)
    assert 'ansible-galaxy collection install' in runs and 'pip install -r' in runs
    assert 'apply=true' in runs and 'prune=true' in runs
    gitlab = yaml.safe_load((GITOPS / '.gitlab-ci.yml').read_text())
    jobs = {name: job for name, job in gitlab.items() if isinstance(job, dict) and 'script' in job}
    assert any(
        job.get('artifacts', {}).get('reports', {}).get('junit') == 'reports/policy.xml' for job in jobs.values()
    )
    for text in (
        (GITOPS / '.github' / 'workflows' / 'images.yml').read_text(),
        (GITOPS / '.gitlab-ci.yml').read_text(),
    ):
        assert not re.search(r'(echo|cat|printenv|env)\b[^\n]*(PASSWORD|SECRET|CLOUDS_YAML|OS_CLIENT_CONFIG)', text)
