"""Cloud-to-cloud transfer by imagegov.openstack.image_transfer against a bare download piped
into a bare PUT, between the same two clouds in the same run.

1. The source image: --size-gib (default 2) of pseudo-random bytes (a seeded 64 MiB block
   repeated, incompressible) uploaded to the source cloud by a bare POST + PUT, generated
   in memory (no local file at all).
2. Baseline: POST /v2/images at the destination, then GET /v2/images/{id}/file at the
   source streamed (4 MiB reads) straight into PUT /v2/images/{id}/file at the
   destination (requests, Content-Length, no hashing, no inspection). GET + PUT are timed.
3. Module: ``ansible-playbook`` with one ``imagegov.openstack.image_transfer`` task, whose
   Python runs under an interpreter wrapper that records the module process's wall time,
   peak RSS (getrusage RUSAGE_CHILDREN) and the bytes it caused to be written to any
   block device (``write_bytes`` of /proc/self/io, into which Linux adds a reaped child's
   counters). The module time covers everything it does: start-up, two authentications,
   the policy, the 8 MiB Range read of the source's header, the look-up, the record, the
   streamed copy (two sha512 + sha256 + format inspection on the way), the checks of both
   hashes and the final patch.
4. Baseline and module alternate (--rounds, default 2: B M B M); the best of each counts.
   Goals: time ratio baseline / module >= 0.85, peak RSS <= 150 MB, no image data written
   locally: the module process writes what a check-mode run of the same task writes (measured
   first through the same wrapper) - AnsiballZ's payload zip (~300 KiB, every module run),
   stevedore's entry-point cache (~14 KiB) and tempfile's 4-byte probe, nothing else (strace
   shows no other file opened for writing); page accounting of those varies by a few KiB
   between runs, so the goal is "< 1 MiB beyond check mode" (2 GiB of data would be 2 GiB).

The second cloud is started (and stopped again) the way the integration tests start it,
unless it runs already. Every image made is deleted, also on failure or Ctrl-C.

    IMAGEGOV_DEVCLOUD_DIR=... .venv/bin/python benchmarks/transfer.py [--size-gib 2] [--rounds 2] [--check]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from bench_common import REPO, BenchCloud, code_version, log

sys.path.insert(0, str(REPO / 'tests' / 'integration'))
from devcloud_state import SECOND_DIR, STATE_DIR, second_cloud  # noqa: E402

RESULTS = REPO / 'benchmarks' / 'results' / 'transfer.json'
MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK = 64 * MIB
CHUNK = 4 * MIB
SEED = 20261125
GOAL_RATIO = 0.85
GOAL_RSS_MB = 150.0  # MB = 10**6 bytes

WRAPPER = """#!{python}
import json, resource, subprocess, sys, time
def io():
    return {{k: int(v) for k, v in (line.split(': ') for line in open('/proc/self/io').read().splitlines())}}
before = io()
t0 = time.perf_counter()
rc = subprocess.run([{python!r}] + sys.argv[1:]).returncode
seconds = time.perf_counter() - t0
after = io()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open({log!r}, 'a') as log:
    log.write(json.dumps(dict(argv=sys.argv[1:], rc=rc, seconds=seconds, maxrss_kib=usage.ru_maxrss,
                              user=usage.ru_utime, system=usage.ru_stime,
                              write_bytes=after['write_bytes'] - before['write_bytes'])) + '\\n')
sys.exit(rc)
"""

PLAYBOOK = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: Transfer the benchmark image
      imagegov.openstack.image_transfer:
        source_cloud: "{{ bench_source }}"
        image: "{{ bench_image }}"
        cloud: "{{ bench_dest }}"
        name: "{{ bench_name }}"
"""


def generated(size: int) -> Iterator[bytes]:
    block = random.Random(SEED).randbytes(BLOCK)
    left = size
    while left > 0:
        for start in range(0, BLOCK, CHUNK):
            piece = block[start : start + min(CHUNK, left)]
            left -= len(piece)
            yield piece
            if left <= 0:
                return


class Body:
    """A sized request body handing out whole chunks (as the collection's StreamBody)."""

    def __init__(self, chunks: Iterator[bytes], length: int) -> None:
        self.chunks, self.length = chunks, length

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        return next(self.chunks, b'')


class Cloud(BenchCloud):
    def headers(self, **extra: str) -> dict[str, str]:
        return {'X-Auth-Token': self.conn.session.get_token(), **extra}

    def create(self, name: str) -> str:
        response = self.requests.post(
            f'{self.endpoint}/images',
            json={'name': name, 'disk_format': 'raw', 'container_format': 'bare', 'visibility': 'private'},
            headers=self.headers(),
            timeout=60,
        )
        response.raise_for_status()
        self.made.add(response.json()['id'])
        return response.json()['id']

    def put(self, image_id: str, body: Any) -> None:
        response = self.requests.put(
            f'{self.endpoint}/images/{image_id}/file',
            data=body,
            headers=self.headers(**{'Content-Type': 'application/octet-stream'}),
            timeout=3600,
        )
        if response.status_code != 204:
            raise RuntimeError(f'PUT answered {response.status_code}: {response.text[:300]}')

    def download(self, image_id: str) -> tuple[int, Iterator[bytes]]:
        response = self.requests.get(
            f'{self.endpoint}/images/{image_id}/file', headers=self.headers(), stream=True, timeout=3600
        )
        response.raise_for_status()
        return int(response.headers['Content-Length']), response.iter_content(CHUNK)

    def get(self, image_id: str) -> dict[str, Any]:
        response = self.requests.get(f'{self.endpoint}/images/{image_id}', headers=self.headers(), timeout=60)
        response.raise_for_status()
        return response.json()

    def find(self, name: str) -> list[dict[str, Any]]:
        response = self.requests.get(
            f'{self.endpoint}/images', params={'name': f'eq:{name}'}, headers=self.headers(), timeout=60
        )
        response.raise_for_status()
        return response.json()['images']

    def delete(self, image_id: str) -> None:
        self.requests.delete(f'{self.endpoint}/images/{image_id}', headers=self.headers(), timeout=60)
        self.made.discard(image_id)


def glance_ms(glance_log: Path, method: str, image_id: str) -> float | None:
    pattern = re.compile(rf'"{method} /v2/images/{image_id}/file HTTP/1\.1" \d+ \S+ (\d+)ms')
    if not glance_log.is_file():
        return None
    found = [float(m.group(1)) for m in pattern.finditer(glance_log.read_text(errors='replace'))]
    return found[-1] if found else None


def run_baseline(src: Cloud, dst: Cloud, source_id: str, dst_log: Path, tag: str) -> dict[str, Any]:
    image_id = dst.create(f'bench-transfer-bare-{tag}')
    try:
        t0 = time.perf_counter()
        length, chunks = src.download(source_id)
        dst.put(image_id, Body(iter(chunks), length))
        seconds = time.perf_counter() - t0
        image = dst.get(image_id)
        return dict(seconds=seconds, glance_put_ms=glance_ms(dst_log, 'PUT', image_id), size=image['size'])
    finally:
        dst.delete(image_id)


class ModuleRunner:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix='transfer-bench-'))
        link = self.dir / 'collections' / 'ansible_collections' / 'imagegov' / 'openstack'
        link.parent.mkdir(parents=True)
        link.symlink_to(REPO)
        self.log = self.dir / 'module-runs.jsonl'
        self.interpreter = self.dir / 'python-wrapper'
        self.interpreter.write_text(WRAPPER.format(python=sys.executable, log=str(self.log)))
        self.interpreter.chmod(self.interpreter.stat().st_mode | stat.S_IXUSR)
        self.playbook = self.dir / 'transfer.yml'
        self.playbook.write_text(PLAYBOOK)
        (self.dir / 'tmp').mkdir()
        venv_bin = str(Path(sys.executable).parent)
        self.ansible_playbook = str(Path(venv_bin) / 'ansible-playbook')
        self.env = dict(
            os.environ,
            PATH=f'{venv_bin}:{os.environ.get("PATH", "")}',
            OS_CLIENT_CONFIG_FILE=str(merged_clouds(self.dir / 'clouds.yaml')),
            ANSIBLE_COLLECTIONS_PATH=str(self.dir / 'collections'),
            ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
            ANSIBLE_LOCAL_TEMP=str(self.dir / 'tmp'),
            ANSIBLE_REMOTE_TMP=str(self.dir / 'tmp'),
            ANSIBLE_LOCALHOST_WARNING='false',
            ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
            ANSIBLE_DEPRECATION_WARNINGS='false',
            ANSIBLE_NOCOLOR='1',
            IMAGEGOV_CACHE_DIR=str(self.dir / 'cache'),
            TMPDIR=str(self.dir / 'tmp'),
        )

    def run(self, src_cloud: str, dst_cloud: str, dst: Cloud, source_id: str, dst_log: Path, tag: str) -> dict:
        self.log.unlink(missing_ok=True)
        name = f'bench-transfer-module-{tag}'
        logs = {'source': STATE_DIR / 'state' / 'logs' / 'glance.log', 'destination': dst_log}
        offsets = {side: path.stat().st_size for side, path in logs.items()}
        extra = dict(
            bench_source=src_cloud,
            bench_dest=dst_cloud,
            bench_image=source_id,
            bench_name=name,
            ansible_python_interpreter=str(self.interpreter),
        )
        t0 = time.perf_counter()
        proc = subprocess.run(
            [self.ansible_playbook, '-i', 'localhost,', '-c', 'local', '-e', json.dumps(extra), str(self.playbook)],
            env=self.env,
            cwd=self.dir,
            capture_output=True,
            text=True,
            check=False,
        )
        playbook_seconds = time.perf_counter() - t0
        requests = {}
        for side, path in logs.items():
            with path.open('rb') as stream:
                stream.seek(offsets[side])
                lines = stream.read().decode(errors='replace').splitlines()
            # The source cloud may serve other users meanwhile: only the requests naming the source image.
            requests[side] = [
                line for line in lines if line.startswith('req:') and (side == 'destination' or source_id in line)
            ]
        found = dst.find(name)
        for image in found:
            dst.made.add(image['id'])
        if proc.returncode != 0:
            raise RuntimeError(f'ansible-playbook failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}')
        runs = [json.loads(line) for line in self.log.read_text().splitlines()]
        runs = [r for r in runs if any('AnsiballZ_image_transfer' in a for a in r['argv'])]
        if len(runs) != 1 or len(found) != 1:
            raise RuntimeError(f'expected one module run and one image, got {runs} and {found}')
        image = found[0]
        try:
            return dict(
                seconds=runs[0]['seconds'],
                playbook_seconds=playbook_seconds,
                peak_rss_kib=runs[0]['maxrss_kib'],
                write_bytes=runs[0]['write_bytes'],
                cpu_user=runs[0]['user'],
                cpu_system=runs[0]['system'],
                glance_put_ms=glance_ms(dst_log, 'PUT', image['id']),
                size=image['size'],
                os_hash_value=image['os_hash_value'],
                requests={side: len(lines) for side, lines in requests.items()},
                request_lines={side: [line.split('"')[1] for line in lines] for side, lines in requests.items()},
                temp_files=sum(1 for path in (self.dir / 'tmp').rglob('*') if 'ansible-tmp' not in str(path)),
            )
        finally:
            dst.delete(image['id'])

    def floor(self, src_cloud: str, dst_cloud: str, source_id: str) -> int:
        """Bytes written by a check-mode run of the same task: the same module and payload
        (AnsiballZ writes the module's zip, ~300 KiB, for every run), the source's header
        read, no image data sent."""
        self.log.unlink(missing_ok=True)
        extra = dict(
            bench_source=src_cloud,
            bench_dest=dst_cloud,
            bench_image=source_id,
            bench_name='bench-transfer-floor',
            ansible_python_interpreter=str(self.interpreter),
        )
        command = [self.ansible_playbook, '-i', 'localhost,', '-c', 'local', '--check', '-e', json.dumps(extra)]
        subprocess.run([*command, str(self.playbook)], env=self.env, cwd=self.dir, capture_output=True, check=True)
        runs = [json.loads(line) for line in self.log.read_text().splitlines()]
        return next(r['write_bytes'] for r in runs if any('AnsiballZ_image_transfer' in a for a in r['argv']))

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def merged_clouds(path: Path) -> Path:
    merged: dict = {'clouds': {}}
    for clouds in (STATE_DIR / 'clouds.yaml', SECOND_DIR / 'clouds.yaml'):
        merged['clouds'].update(yaml.safe_load(clouds.read_text())['clouds'])
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(merged))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--size-gib', type=float, default=2)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--source', default='devcloud-alpha')
    parser.add_argument('--dest', default='devcloud2-alpha')
    parser.add_argument('--json', type=Path, default=RESULTS)
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args()
    size = int(args.size_gib * GIB)

    started = second_cloud('status', check=False).returncode != 0
    if started:
        log('starting the second cloud')
        second_cloud('start')
    runner = ModuleRunner()
    os.environ['OS_CLIENT_CONFIG_FILE'] = runner.env['OS_CLIENT_CONFIG_FILE']
    src, dst = Cloud(args.source), Cloud(args.dest)
    dst_log = SECOND_DIR / 'state' / 'logs' / 'glance.log'
    rounds: dict[str, list[dict[str, Any]]] = {'baseline': [], 'module': []}
    try:
        log(f'uploading the {size / GIB:g} GiB source image to {args.source}')
        source_id = src.create(f'bench-transfer-source-{uuid.uuid4().hex[:6]}')
        src.put(source_id, Body(generated(size), size))
        source = src.get(source_id)
        floor = runner.floor(args.source, args.dest, source_id)
        log(f'a check-mode run of the same task writes {floor} bytes (AnsiballZ payload)')
        for number in range(args.rounds):
            tag = f'{uuid.uuid4().hex[:6]}-{number}'
            rounds['baseline'].append(run_baseline(src, dst, source_id, dst_log, tag))
            log(f'baseline round {number + 1}: {rounds["baseline"][-1]["seconds"]:.2f} s')
            rounds['module'].append(runner.run(args.source, args.dest, dst, source_id, dst_log, tag))
            m = rounds['module'][-1]
            log(
                f'module round {number + 1}: {m["seconds"]:.2f} s, peak RSS {m["peak_rss_kib"] / 1000:.1f} MB, '
                f'{m["write_bytes"]} bytes written'
            )
            if m['os_hash_value'] != source['os_hash_value'] or m['size'] != size:
                raise RuntimeError('the copy differs from the source')
    finally:
        for cloud in (src, dst):
            for image_id in list(cloud.made):
                cloud.delete(image_id)
        runner.close()
        if started:
            second_cloud('stop', check=False)

    base = min(rounds['baseline'], key=lambda r: r['seconds'])
    mod = min(rounds['module'], key=lambda r: r['seconds'])
    ratio = base['seconds'] / mod['seconds']
    rss_mb = max(r['peak_rss_kib'] for r in rounds['module']) * 1024 / 1e6
    written = max(r['write_bytes'] for r in rounds['module'])
    goals = {
        'ratio': ratio >= GOAL_RATIO,
        'peak_rss': rss_mb <= GOAL_RSS_MB,
        # Page accounting of the same files (payload zip, stevedore's entry-point cache) varies by a
        # few KiB between runs; a byte of image data per MiB would already exceed this.
        'disk_bytes': written - floor < MIB,
    }
    print(f'\ntransfer of {size / GIB:g} GiB, {args.source} -> {args.dest}, best of {args.rounds} rounds each')
    print(f'  bare GET | PUT   {base["seconds"]:7.2f} s  {size / MIB / base["seconds"]:7.1f} MiB/s')
    print(
        f'  image_transfer   {mod["seconds"]:7.2f} s  {size / MIB / mod["seconds"]:7.1f} MiB/s '
        f'(whole ansible-playbook {mod["playbook_seconds"]:.2f} s; CPU {mod["cpu_user"]:.1f} user '
        f'+ {mod["cpu_system"]:.1f} sys s)'
    )
    print(
        f'  Glance requests  source {mod["requests"]["source"]}, destination {mod["requests"]["destination"]} '
        f'(bare: 1 + 2): {mod["request_lines"]}'
    )
    print(f'  ratio bare/module {ratio:.3f}  (goal >= {GOAL_RATIO})  {"PASS" if goals["ratio"] else "MISS"}')
    print(f'  peak RSS         {rss_mb:.1f} MB  (goal <= {GOAL_RSS_MB:g})  {"PASS" if goals["peak_rss"] else "MISS"}')
    print(
        f'  disk bytes       {written - floor} beyond a check-mode run ({written} in all, {floor} in check mode) '
        f'(goal: no image data, < 1 MiB)  {"PASS" if goals["disk_bytes"] else "MISS"}'
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            dict(
                when=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                size=size,
                rounds=rounds,
                ratio=ratio,
                peak_rss_mb=rss_mb,
                disk_bytes=written,
                disk_bytes_floor=floor,
                goals=goals,
                code=code_version(),
            ),
            indent=2,
        )
    )
    return 1 if args.check and not all(goals.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
