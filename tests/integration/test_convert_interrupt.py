"""An interrupted conversion leaves nothing: no qemu-img still running, no scratch file, no
image. The module is terminated (SIGTERM, as AWX cancels a job) while qemu-img converts; a
recording qemu-img first on PATH holds the conversion long enough to be caught in the act."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from playbook_runner import run_playbook

HERE = Path(__file__).resolve().parent
SHIM = HERE / 'targets' / 'convert' / 'files' / 'qemu-img-shim.sh'

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Convert and upload (terminated while converting)
      imagegov.openstack.image:
        cloud: devcloud-alpha
        name: "{{ image_name }}"
        filename: "{{ source }}"
        convert_to: raw
        scratch_dir: "{{ scratch }}"
"""

CHECK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Look for the image
      imagegov.openstack.image_info:
        cloud: devcloud-alpha
        name: "{{ image_name }}"
        hidden: all
      register: found
    - name: No image was left
      ansible.builtin.assert:
        that: found.images == []
"""


def _pids_with(text: str) -> list[int]:
    out = subprocess.run(['pgrep', '-f', text], capture_output=True, text=True, check=False).stdout
    return [int(pid) for pid in out.split()]


def _parent_of(pid: int) -> int:
    with open(f'/proc/{pid}/stat', encoding='ascii') as stat:
        return int(stat.read().rsplit(')', 1)[1].split()[1])


def test_terminated_conversion_leaves_nothing(ansible_env: dict[str, str], tmp_path: Path) -> None:
    shim_dir, scratch = tmp_path / 'shim', tmp_path / 'scratch'
    shim_dir.mkdir()
    scratch.mkdir()
    (shim_dir / 'qemu-img').write_bytes(SHIM.read_bytes())
    (shim_dir / 'qemu-img').chmod(0o755)
    source = tmp_path / 'source.vdi'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'vdi', str(source), '256M'], check=True)
    log = tmp_path / 'qemu-img.log'
    env = dict(
        ansible_env,
        PATH=f'{shim_dir}:{ansible_env["PATH"]}',
        IMAGEGOV_TEST_QEMU_LOG=str(log),
        IMAGEGOV_TEST_SLOW_CONVERT='60',
    )
    play, name = tmp_path / 'play.yml', f'it-interrupt-{uuid.uuid4().hex[:6]}'
    play.write_text(PLAY)
    playbook = subprocess.Popen(
        [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(play),
         '-e', f'image_name={name}', '-e', f'source={source}', '-e', f'scratch={scratch}'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        converting: list[int] = []
        while not converting and time.monotonic() < deadline and playbook.poll() is None:
            time.sleep(0.2)
            converting = _pids_with(f'time.sleep.*{scratch}')
        assert converting, f'qemu-img convert never started:\n{playbook.communicate()[0]}'
        assert any(scratch.iterdir()), 'the conversion has its private directory in scratch space'
        os.kill(_parent_of(converting[0]), signal.SIGTERM)
        output = playbook.communicate(timeout=120)[0]
    finally:
        if playbook.poll() is None:
            playbook.kill()
    assert playbook.returncode != 0, output
    assert 'terminated' in output.lower() or 'SIGTERM' in output, output
    assert _pids_with(str(scratch)) == [], 'qemu-img still runs'
    assert list(scratch.iterdir()) == [], 'scratch space is not empty'
    check = tmp_path / 'check.yml'
    check.write_text(CHECK)
    result = run_playbook(ansible_env, check, '-e', f'image_name={name}')
    assert result.returncode == 0, result.stdout + result.stderr
