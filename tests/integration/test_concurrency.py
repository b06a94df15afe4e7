"""Concurrent runs converge: several runs of the same image task, or of the same catalog,
released at the same moment end with exactly one image per name, and the next run changes
nothing. The outcome does not depend on timing; the runs wait at a barrier so that they
really race.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import openstack
import openstack.config
import pytest
from playbook_runner import run_playbook

# Three rounds (18 losing image runs) at three fifths of the time five took; how many losing
# runs met the 409 join depends on timing and is printed, not asserted.
ROUNDS = 3
IMAGE_RUNS = 4
CATALOG_RUNS = 2
JOINED = 'was created by another run at the same time'

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Ready
      ansible.builtin.file: {{path: "{ready}", state: touch, mode: '0644'}}
      changed_when: false
    - name: Wait for the others (polled every 10 ms, so that all runs start within that)
      ansible.builtin.shell: "for i in $(seq 12000); do [ -e '{go}' ] && exit 0; sleep 0.01; done; exit 1"
      changed_when: false
    - name: The task every run performs
      {module}:
{args}
"""


def _indent(lines: dict[str, object]) -> str:
    return '\n'.join(
        f'        {key}: {value!r}' if not isinstance(value, str) else f'        {key}: "{value}"'
        for key, value in lines.items()
    )


def _race(env: dict[str, str], work: Path, module: str, args: dict[str, object], runs: int) -> list[str]:
    """Start ``runs`` playbooks that wait at a barrier, release them together, return their outputs."""
    tag = uuid.uuid4().hex[:8]
    go = work / f'go-{tag}'
    processes = []
    for index in range(runs):
        ready = work / f'ready-{tag}-{index}'
        playbook = work / f'race-{tag}-{index}.yml'
        playbook.write_text(PLAYBOOK.format(ready=ready, go=go, module=module, args=_indent(args)))
        processes.append(
            (
                ready,
                subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / 'ansible-playbook'),
                        '-v',
                        '-i',
                        'localhost,',
                        '-c',
                        'local',
                        str(playbook),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
    deadline = time.monotonic() + 120
    while not all(ready.exists() for ready, _process in processes):
        assert time.monotonic() < deadline, 'the runs did not reach the barrier'
        time.sleep(0.1)
    go.touch()
    outputs = []
    for _ready, process in processes:
        output = process.communicate(timeout=600)[0]
        assert process.returncode == 0, f'a concurrent run failed:\n{output[-6000:]}'
        outputs.append(output)
    return outputs


def _run_once(env: dict[str, str], work: Path, module: str, args: dict[str, object]) -> str:
    playbook = work / f'once-{uuid.uuid4().hex[:8]}.yml'
    playbook.write_text(
        PLAYBOOK.format(ready=work / 'unused-ready', go=work / 'unused-ready', module=module, args=_indent(args))
    )
    result = run_playbook(env, playbook, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result.stdout


def _task_changed(output: str) -> bool:
    """Whether the task under test changed something (the barrier tasks never do)."""
    return 'changed=0 ' not in output[output.index('PLAY RECAP') :]


def _images_named(conn: openstack.connection.Connection, name: str, prefix: bool = False) -> list[dict]:
    found = []
    for hidden in ('false', 'true'):
        body = conn.image.get(
            '/images',
            params={
                'visibility': 'all',
                'os_hidden': hidden,
                'limit': 1000,
                **({} if prefix else {'name': f'eq:{name}'}),
            },
        ).json()
        found += [
            image
            for image in body['images']
            if image['status'] not in ('deleted', 'killed', 'pending_delete')
            and (image['name'].startswith(name) if prefix else image['name'] == name)
        ]
    return found


@pytest.fixture(scope='module')
def alpha(devcloud: Path) -> openstack.connection.Connection:
    region = openstack.config.OpenStackConfig(config_files=[str(devcloud)]).get_one(cloud='devcloud-alpha')
    return openstack.connection.Connection(config=region)


@pytest.fixture(scope='module')
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp('concurrency-images')
    files = {}
    for label in ('a', 'b'):
        raw, qcow2 = work / f'{label}.raw', work / f'{label}.qcow2'
        raw.write_bytes(uuid.uuid4().bytes * 65536)
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', str(raw), str(qcow2)], check=True)
        files[label] = qcow2
    return files


def _cleanup(alpha: openstack.connection.Connection, prefix: str) -> None:
    for image in _images_named(alpha, prefix, prefix=True):
        alpha.image.delete(f'/images/{image["id"]}')


def test_concurrent_image_tasks_converge(ansible_env, alpha, images, tmp_path):
    """Each round: 4 runs create an image at once, then 4 runs replace its data at once."""
    env = dict(ansible_env, ANSIBLE_FORCE_COLOR='0')
    prefix = f'it-race-{uuid.uuid4().hex[:6]}'
    joined = 0
    try:
        for round_number in range(ROUNDS):
            name = f'{prefix}-{round_number}'
            create = {'cloud': 'devcloud-alpha', 'name': name, 'filename': str(images['a'])}
            outputs = _race(env, tmp_path, 'imagegov.openstack.image', create, IMAGE_RUNS)
            joined += sum(JOINED in output for output in outputs)
            named = _images_named(alpha, name)
            assert len(named) == 1, f'round {round_number}: {len(named)} images named {name}'
            assert named[0]['status'] == 'active'
            assert sum(_task_changed(output) for output in outputs) >= 1
            assert not _task_changed(_run_once(env, tmp_path, 'imagegov.openstack.image', create))

            replace = dict(create, filename=str(images['b']))
            joined += sum(
                JOINED in output for output in _race(env, tmp_path, 'imagegov.openstack.image', replace, IMAGE_RUNS)
            )
            named = _images_named(alpha, name)
            assert len(named) == 1, f'round {round_number} (replace): {len(named)} images named {name}'
            assert named[0]['id'] != _images_named(alpha, f'{name}.replaced-', prefix=True)[0]['id']
            assert len(_images_named(alpha, name, prefix=True)) == 2, 'one replacement, one retired original'
            assert not _task_changed(_run_once(env, tmp_path, 'imagegov.openstack.image', replace))
        # How often a losing run listed before the winner created the image, and so met it as
        # Glance's 409 on the shared derived id, depends on timing: reported, not asserted (the
        # unit tests and the threats target exercise that path deterministically).
        print(f'{joined} of {2 * ROUNDS * (IMAGE_RUNS - 1)} losing runs joined the winner through a 409')
    finally:
        _cleanup(alpha, prefix)


def test_concurrent_catalog_runs_converge(ansible_env, alpha, images, tmp_path):
    """Each round: 2 runs apply the same 4-image catalog at once."""
    env = dict(ansible_env, ANSIBLE_FORCE_COLOR='0')
    prefix = f'it-race-cat-{uuid.uuid4().hex[:6]}'
    sha256 = {
        label: subprocess.run(['sha256sum', str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
        for label, path in images.items()
    }
    try:
        for round_number in range(ROUNDS):
            names = [f'{prefix}-{round_number}-{index}' for index in range(4)]
            catalog = tmp_path / f'catalog-{round_number}.yml'
            catalog.write_text(
                'version: 1\ndefaults: {disk_format: qcow2, visibility: private}\nimages:\n'
                + ''.join(
                    f'  - {{name: "{name}", source: {{file: {images["ab"[index % 2]]}}}, '
                    f'sha256: {sha256["ab"[index % 2]]}}}\n'
                    for index, name in enumerate(names)
                )
            )
            args = {
                'cloud': 'devcloud-alpha',
                'catalog': [str(catalog)],
                'name': f'{prefix}-{round_number}',
                'source_roots': [str(images['a'].parent)],
            }
            outputs = _race(env, tmp_path, 'imagegov.openstack.catalog', args, CATALOG_RUNS)
            for name in names:
                named = _images_named(alpha, name)
                assert len(named) == 1, f'round {round_number}: {len(named)} images named {name}'
            assert sum(_task_changed(output) for output in outputs) >= 1
            assert not _task_changed(_run_once(env, tmp_path, 'imagegov.openstack.catalog', args))
    finally:
        _cleanup(alpha, prefix)
