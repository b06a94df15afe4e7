"""An interrupted export resumes: the module is terminated (SIGTERM, as AWX cancels a job)
and then killed outright (SIGKILL: no cleanup at all) in the middle of a download; each
time the part file keeps what was written, and the next run hashes it, asks Glance for
the rest with a Range request and publishes the file only once it is verified.

Downloads are slowed down (slow_download/sitecustomize.py, on PYTHONPATH for the killed
runs only) so that the kills land mid-download."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import openstack
import openstack.config
from playbook_runner import run_playbook

HERE = Path(__file__).resolve().parent
SIZE = 12 * 1024 * 1024  # three 4 MiB chunks: one before SIGTERM, one before SIGKILL, one left

# The image is uploaded and removed through the SDK (each ansible-playbook costs seconds;
# the image module's upload is tested elsewhere): only the three exports are playbooks.
EXPORT = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Export the image
      imagegov.openstack.image_export:
        cloud: devcloud-alpha
        image: "{{ image_name }}"
        path: "{{ target }}"
      register: exported
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{ exported | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
"""


def _pids(text: str) -> list[int]:
    out = subprocess.run(['pgrep', '-f', text], capture_output=True, text=True, check=False).stdout
    return [int(pid) for pid in out.split()]


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open(f'/proc/{pid}/stat', encoding='ascii') as stat:
                pid = int(stat.read().rsplit(')', 1)[1].split()[1])
        except OSError:
            return False
    return False


def _part(directory: Path) -> Path | None:
    return next(iter(directory.glob('.disk.raw.*.imagegov-part')), None)


def _interrupted_run(env: dict[str, str], play: Path, args: list[str], directory: Path, above: int, signum: int) -> str:
    """Start an export, wait until its part file has grown past ``above`` bytes, send
    ``signum`` to the module; the playbook's output."""
    slow = dict(env, PYTHONPATH=str(HERE / 'slow_download'), IMAGEGOV_TEST_SLOW_DOWNLOAD='1')
    playbook = subprocess.Popen(
        [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(play), *args],
        env=slow, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and playbook.poll() is None:
            part = _part(directory)
            if part is not None and part.stat().st_size > above:
                break
            time.sleep(0.05)
        part = _part(directory)
        assert part is not None and part.stat().st_size > above, (
            f'the download never got going:\n{playbook.communicate()[0]}'
        )
        modules = [pid for pid in _pids('AnsiballZ_image_export') if _descends_from(pid, playbook.pid)]
        assert modules, 'the module is not running'
        for pid in modules:
            os.kill(pid, signum)
        return playbook.communicate(timeout=120)[0]
    finally:
        if playbook.poll() is None:
            playbook.kill()


def _partial_answers(log: Path, image_id: str) -> int:
    pattern = re.compile(rf'"GET /v2/images/{image_id}/file HTTP/1\.1" 206 ')
    return sum(1 for line in log.read_text(errors='replace').splitlines() if pattern.search(line))


def test_interrupted_export_resumes(ansible_env: dict[str, str], devcloud: Path, tmp_path: Path) -> None:
    data = os.urandom(SIZE)  # no zero block: the part file grows with every chunk
    expected = hashlib.sha512(data).hexdigest()
    name, out = f'it-export-interrupt-{uuid.uuid4().hex[:6]}', tmp_path / 'out'
    out.mkdir()
    region = openstack.config.OpenStackConfig(config_files=[str(devcloud)]).get_one(cloud='devcloud-alpha')
    alpha = openstack.connection.Connection(config=region)
    image_id = alpha.image.create_image(name=name, disk_format='raw', container_format='bare', data=data, wait=True).id
    play, result = tmp_path / 'export.yml', tmp_path / 'result.json'
    play.write_text(EXPORT)
    log = Path(ansible_env['IMAGEGOV_DEVCLOUD_DIR']) / 'state' / 'logs' / 'glance.log'
    args = ['-e', f'image_name={name}', '-e', f'result_file={result}', '-e', f'target={out / "disk.raw"}']
    try:
        # SIGTERM after the first chunk: the module stops, the part file keeps its bytes.
        output = _interrupted_run(ansible_env, play, args, out, 0, signal.SIGTERM)
        assert 'terminated' in output.lower(), output
        after_term = _part(out).stat().st_size
        assert 0 < after_term < SIZE and not (out / 'disk.raw').exists()
        # SIGKILL once the resumed download wrote more: nothing runs on the way out.
        partial_before = _partial_answers(log, image_id)
        output = _interrupted_run(ansible_env, play, args, out, after_term, signal.SIGKILL)
        after_kill = _part(out).stat().st_size
        assert after_term < after_kill < SIZE and not (out / 'disk.raw').exists(), output
        assert oct(_part(out).stat().st_mode & 0o777) == '0o600'
        # The last run: hashes the part file, asks for the rest, verifies, publishes.
        finished = run_playbook(ansible_env, play, *args)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        exported = json.loads(result.read_text())['export']
        assert exported['action'] == 'resume', exported
        assert exported['resumed_from'] == after_kill and exported['hashed'] == after_kill, exported
        assert exported['downloaded'] == SIZE - after_kill, exported
        assert exported['output']['digest']['value'] == expected
        assert hashlib.sha512((out / 'disk.raw').read_bytes()).hexdigest() == expected
        assert _part(out) is None, 'the part file is removed once the export is published'
        # The SIGKILLed run and the last one each asked for the rest with a Range (206).
        assert _partial_answers(log, image_id) - partial_before == 2
    finally:
        alpha.image.delete_image(image_id, ignore_missing=True)
