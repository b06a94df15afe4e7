"""Upload throughput and memory of imagegov.openstack.image against a bare HTTP PUT.

One run, against a running devcloud (``./dev cloud start``):

1. makes a raw test file of --size-gib (default 2 GiB): a 64 MiB pseudo-random block
   (incompressible, seeded so every run has the same bytes) written repeatedly, never
   sparse, in a temp directory on the same disk; an existing file of the right size is
   reused;
2. baseline: POST /v2/images (raw/bare) then PUT /v2/images/{id}/file streaming the file
   with ``requests`` (file object, Content-Length); only the PUT is timed;
3. module: ``ansible-playbook`` with one task ``imagegov.openstack.image`` (filename=the
   file, disk_format raw). The module's Python runs under a small interpreter wrapper that
   records the wall time and the peak RSS (getrusage RUSAGE_CHILDREN, "maximum resident
   set size") of exactly the process that runs the module: start-up, auth, policy
   checks, the 8 MiB header pre-scan, lookups, record creation, the streamed upload
   (sha256 + format inspection + PUT), the sha256 property patch and the final GET;
4. baseline and module alternate (--rounds, default 2: B M B M) and the best of each is
   reported, so neither profits more from caches; the file is read once beforehand, so
   it is in the page cache for every upload (both sides read from memory, not disk);
5. prints a table with the goals (throughput module/baseline >= 0.8, module peak RSS
   <= 150 MB) and writes benchmarks/results/upload.json.

Every image made is deleted, also on failure or Ctrl-C. The test file is removed unless
--keep-file is given.

    .venv/bin/python benchmarks/upload.py [--size-gib 2] [--cloud devcloud-alpha] [--rounds 2]
        [--keep-file] [--workdir DIR] [--check]

OS_CLIENT_CONFIG_FILE selects the clouds.yaml; default $IMAGEGOV_DEVCLOUD_DIR/clouds.yaml,
then <repo>/.devcloud/clouds.yaml. --check exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench_common import REPO, BenchCloud, clouds_yaml_path, code_version, log

RESULTS = REPO / 'benchmarks' / 'results' / 'upload.json'
MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK = 64 * MIB
SEED = 20261122
SHA256_PROPERTY = 'owner_specified.openstack.sha256'
GOAL_RATIO = 0.8
GOAL_RSS_MB = 150.0  # MB = 10**6 bytes (150 MB = 143 MiB)

# Runs as the module's "Python interpreter": runs the real one as its only child and
# appends one JSON line with the child's wall time and peak RSS.
WRAPPER = """#!{python}
import json, os, resource, subprocess, sys, time
start = time.time()
t0 = time.perf_counter()
child = subprocess.Popen([{python!r}] + sys.argv[1:])
marker = os.path.join({running!r}, str(child.pid))
with open(marker, 'w'):  # lets the benchmark stop a module left running by an interrupt
    pass
rc = child.wait()
seconds = time.perf_counter() - t0
os.unlink(marker)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open({log!r}, 'a') as log:
    log.write(json.dumps(dict(argv=sys.argv[1:], rc=rc, start=start, seconds=seconds,
                              maxrss_kib=usage.ru_maxrss, user=usage.ru_utime,
                              system=usage.ru_stime)) + '\\n')
sys.exit(rc)
"""

PLAYBOOK = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: Upload the benchmark file
      imagegov.openstack.image:
        cloud: "{{ bench_cloud }}"
        name: "{{ bench_name }}"
        filename: "{{ bench_file }}"
        disk_format: raw
        container_format: bare
"""


def mib_s(size: int, seconds: float | None) -> float | None:
    return size / MIB / seconds if seconds else None


# -- test file --------------------------------------------------------------------------


def make_file(path: Path, size: int) -> tuple[float, bool]:
    """Write the file (or reuse it when it already has the right size)."""
    if path.is_file() and path.stat().st_size == size:
        return 0.0, True
    path.parent.mkdir(parents=True, exist_ok=True)
    block = memoryview(random.Random(SEED).randbytes(BLOCK))
    start = time.perf_counter()
    partial = path.with_suffix('.partial')
    with open(partial, 'wb') as out:
        left = size
        while left:
            piece = block[: min(left, BLOCK)]
            out.write(piece)
            left -= len(piece)
        out.flush()
        os.fsync(out.fileno())
    partial.rename(path)
    allocated = path.stat().st_blocks * 512
    if allocated < size:
        raise SystemExit(f'{path} is sparse ({allocated} of {size} bytes allocated)')
    return time.perf_counter() - start, False


def read_through(path: Path) -> float:
    """Read the file once so it is in the page cache for every upload; returns seconds."""
    start = time.perf_counter()
    with open(path, 'rb', buffering=0) as stream:
        buffer = bytearray(16 * MIB)
        while stream.readinto(buffer):
            pass
    return time.perf_counter() - start


# -- cloud access -------------------------------------------------------------------------


class Cloud(BenchCloud):
    def headers(self, **extra: str) -> dict[str, str]:
        return dict({'X-Auth-Token': self.conn.session.get_token()}, **extra)

    def create(self, name: str) -> str:
        response = self.requests.post(
            f'{self.endpoint}/images',
            headers=self.headers(),
            json=dict(name=name, disk_format='raw', container_format='bare'),
            timeout=60,
        )
        response.raise_for_status()
        image_id = response.json()['id']
        self.made.add(image_id)
        return image_id

    def put(self, image_id: str, path: Path) -> float:
        headers = self.headers(
            **{'Content-Type': 'application/octet-stream', 'Content-Length': str(path.stat().st_size)}
        )
        with open(path, 'rb') as body:
            cpu = time.process_time()
            start = time.perf_counter()
            response = self.requests.put(
                f'{self.endpoint}/images/{image_id}/file', headers=headers, data=body, timeout=3600
            )
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu
        if response.status_code != 204:
            raise RuntimeError(f'baseline PUT: HTTP {response.status_code}: {response.text[:300]}')
        return seconds, cpu

    def get(self, image_id: str) -> dict[str, Any]:
        response = self.requests.get(f'{self.endpoint}/images/{image_id}', headers=self.headers(), timeout=60)
        response.raise_for_status()
        return response.json()

    def find(self, name: str) -> list[dict[str, Any]]:
        found = []
        for hidden in ('false', 'true'):
            response = self.requests.get(
                f'{self.endpoint}/images',
                headers=self.headers(),
                timeout=60,
                params=dict(name=name, owner=self.project_id, os_hidden=hidden),
            )
            response.raise_for_status()
            found += response.json()['images']
        for image in found:
            self.made.add(image['id'])
        return found

    def delete(self, image_id: str) -> None:
        response = self.requests.delete(f'{self.endpoint}/images/{image_id}', headers=self.headers(), timeout=120)
        if response.status_code not in (204, 404):
            raise RuntimeError(f'deleting {image_id}: HTTP {response.status_code}')
        self.made.discard(image_id)

    def cleanup(self, names: list[str]) -> list[str]:
        """Delete every image this run made (by id, and by name for the module's)."""
        problems = []
        for name in names:
            try:
                self.find(name)
            except Exception as exc:  # keep cleaning
                problems.append(f'listing {name!r}: {exc}')
        for image_id in sorted(self.made):
            try:
                self.delete(image_id)
            except Exception as exc:
                problems.append(str(exc))
        return problems


def glance_put_ms(glance_log: Path | None, image_id: str) -> float | None:
    """Glance's own duration of PUT /v2/images/{id}/file (uwsgi request log), if logged."""
    if not glance_log or not glance_log.is_file():
        return None
    pattern = re.compile(rf'"PUT /v2/images/{image_id}/file HTTP/[\d.]+" 204 .*? (\d+)ms')
    with open(glance_log, 'rb') as stream:
        stream.seek(max(0, stream.seek(0, os.SEEK_END) - 4 * MIB))
        tail = stream.read().decode('utf-8', 'replace')
    found = pattern.findall(tail)
    return float(found[-1]) if found else None


# -- the two measurements ------------------------------------------------------------------


def run_baseline(cloud: Cloud, path: Path, glance_log: Path | None, tag: str) -> dict[str, Any]:
    image_id = cloud.create(f'imagegov-bench-{tag}-baseline')
    try:
        seconds, cpu = cloud.put(image_id, path)
        image = cloud.get(image_id)
        if image['status'] != 'active' or image['size'] != path.stat().st_size:
            raise RuntimeError(f'baseline image is {image["status"]}, size {image["size"]}')
        return dict(
            seconds=seconds,
            cpu=cpu,
            glance_put_ms=glance_put_ms(glance_log, image_id),
            os_hash_value=image.get('os_hash_value'),
        )
    finally:
        cloud.delete(image_id)


class ModuleRunner:
    def __init__(self, workdir: Path, cloud_name: str, clouds_yaml: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix='upload-bench-', dir=workdir))
        link = self.dir / 'collections' / 'ansible_collections' / 'imagegov' / 'openstack'
        link.parent.mkdir(parents=True)
        link.symlink_to(REPO)
        self.rss_log = self.dir / 'module-runs.jsonl'
        self.interpreter = self.dir / 'python-wrapper'
        self.running = self.dir / 'running'
        self.running.mkdir()
        self.interpreter.write_text(
            WRAPPER.format(python=sys.executable, log=str(self.rss_log), running=str(self.running))
        )
        self.interpreter.chmod(self.interpreter.stat().st_mode | stat.S_IXUSR)
        self.playbook = self.dir / 'upload.yml'
        self.playbook.write_text(PLAYBOOK)
        (self.dir / 'tmp').mkdir()
        venv_bin = str(Path(sys.executable).parent)
        self.ansible_playbook = str(Path(venv_bin) / 'ansible-playbook')
        self.cloud_name = cloud_name
        self.env = dict(
            os.environ,
            PATH=f'{venv_bin}:{os.environ.get("PATH", "")}',
            OS_CLIENT_CONFIG_FILE=str(clouds_yaml),
            ANSIBLE_COLLECTIONS_PATH=str(self.dir / 'collections'),
            ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
            ANSIBLE_PYTHON_INTERPRETER=str(self.interpreter),
            ANSIBLE_LOCAL_TEMP=str(self.dir / 'tmp'),
            ANSIBLE_REMOTE_TMP=str(self.dir / 'tmp'),
            ANSIBLE_HOST_KEY_CHECKING='false',
            ANSIBLE_RETRY_FILES_ENABLED='false',
            ANSIBLE_LOCALHOST_WARNING='false',
            ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
            ANSIBLE_DEPRECATION_WARNINGS='false',
            ANSIBLE_NOCOLOR='1',
        )

    def run(self, cloud: Cloud, path: Path, glance_log: Path | None, name: str) -> dict[str, Any]:
        self.rss_log.unlink(missing_ok=True)
        extra = json.dumps(
            dict(
                bench_cloud=self.cloud_name,
                bench_name=name,
                bench_file=str(path),
                ansible_python_interpreter=str(self.interpreter),
            )
        )
        start = time.perf_counter()
        proc = subprocess.run(
            [self.ansible_playbook, '-i', 'localhost,', '-c', 'local', '-e', extra, str(self.playbook)],
            env=self.env,
            cwd=self.dir,
            capture_output=True,
            text=True,
            check=False,
        )
        playbook_seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(
                f'ansible-playbook failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}'
            )
        runs = [json.loads(line) for line in self.rss_log.read_text().splitlines()] if self.rss_log.is_file() else []
        runs = [r for r in runs if any('AnsiballZ_image' in a for a in r['argv'])] or runs
        if len(runs) != 1:
            raise RuntimeError(f'expected one module process under the wrapper, got {runs}')
        record = runs[0]
        images = cloud.find(name)
        if len(images) != 1:
            raise RuntimeError(f'expected one image named {name!r}, found {len(images)}')
        image = images[0]
        if image['status'] != 'active' or image['size'] != path.stat().st_size or not image.get(SHA256_PROPERTY):
            raise RuntimeError(
                f'module image is {image["status"]}, size {image["size"]}, '
                f'sha256 property {image.get(SHA256_PROPERTY)!r}'
            )
        return dict(
            seconds=record['seconds'],
            playbook_seconds=playbook_seconds,
            peak_rss_kib=record['maxrss_kib'],
            cpu_user=record['user'],
            cpu_system=record['system'],
            image_id=image['id'],
            glance_put_ms=glance_put_ms(glance_log, image['id']),
            os_hash_value=image.get('os_hash_value'),
            sha256=image[SHA256_PROPERTY],
        )

    def stop_left_running(self) -> None:
        """After an interrupt the module may still run (Ctrl-C stops ansible-playbook, not
        always its module): stop it, so that the clean-up sees every image it made."""
        for marker in self.running.iterdir():
            pid = int(marker.name)
            try:
                if 'AnsiballZ_' not in Path(f'/proc/{pid}/cmdline').read_text():
                    continue
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                continue
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            log(f'stopped the module process {pid} left running')

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ('Z', 'X')


# -- main ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration), open('/proc/cpuinfo', encoding='utf-8') as info:
        cpu = next(line.split(':', 1)[1].strip() for line in info if line.startswith('model name'))
    return dict(
        cpus=os.cpu_count(),
        cpu=cpu,
        python=platform.python_version(),
        system=f'{platform.system()} {platform.release()}',
        memory_gib=round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GIB, 1),
    )


def best(rounds: list[dict[str, Any]], key: str = 'seconds') -> dict[str, Any]:
    return min(rounds, key=lambda r: r[key])


def fmt(value: float | None, spec: str) -> str:
    return '-' if value is None else format(value, spec)


def report(
    size: int, baselines: list[dict[str, Any]], modules: list[dict[str, Any]], meta: dict[str, Any]
) -> dict[str, Any]:
    b, m = best(baselines), best(modules)
    peak_kib = max(r['peak_rss_kib'] for r in modules)
    peak_mb = peak_kib * 1024 / 1e6
    ratio = b['seconds'] / m['seconds']
    b_put = [r['glance_put_ms'] for r in baselines if r['glance_put_ms']]
    m_put = [r['glance_put_ms'] for r in modules if r['glance_put_ms']]
    put_ratio = min(b_put) / min(m_put) if b_put and m_put else None
    goals = dict(
        ratio=dict(goal=f'>= {GOAL_RATIO}', value=round(ratio, 3), passed=ratio >= GOAL_RATIO),
        peak_rss_mb=dict(goal=f'<= {GOAL_RSS_MB:g}', value=round(peak_mb, 1), passed=peak_mb <= GOAL_RSS_MB),
    )
    verdict = {True: 'PASS', False: 'MISS'}

    print()
    print(f'Upload benchmark: {size} bytes ({size / GIB:g} GiB), raw, {len(baselines)} rounds each, best of each')
    print('The file was in the page cache for every upload (read once beforehand); baseline and module alternated.')
    print(f'{"":34}{"seconds":>9}{"MiB/s":>9}')
    rows = [('baseline: bare PUT (requests)', b['seconds']), ('module: imagegov.openstack.image', m['seconds'])]
    for label, seconds in rows:
        print(f'{label:34}{seconds:9.2f}{mib_s(size, seconds):9.1f}')
    print(f'{"  (whole ansible-playbook run)":34}{m["playbook_seconds"]:9.2f}{mib_s(size, m["playbook_seconds"]):9.1f}')
    if put_ratio:
        print(f'{"  Glance-side PUT: baseline":34}{min(b_put) / 1000:9.2f}{mib_s(size, min(b_put) / 1000):9.1f}')
        print(f'{"  Glance-side PUT: module":34}{min(m_put) / 1000:9.2f}{mib_s(size, min(m_put) / 1000):9.1f}')
    print(
        f'client CPU (user+sys), best rounds: baseline PUT {b["cpu"]:.2f} s, module process '
        f'{m["cpu_user"] + m["cpu_system"]:.2f} s'
    )
    print(
        f'load average before/after: {meta["load_before"]} / {meta["load_after"]}; '
        f'plugins/ {meta["code"]["plugins_sha256"]} at {meta["code"]["commit"]}'
        + (' (modified)' if meta['code']['plugins_modified'] else '')
    )
    print()
    print(f'{"goal":44}{"value":>9}  result')
    print(f'{"throughput ratio module/baseline >= 0.8":44}{ratio:9.3f}  {verdict[goals["ratio"]["passed"]]}')
    if put_ratio:
        print(f'{"  (PUT only, Glance log; not the goal)":44}{put_ratio:9.3f}')
    print(f'{"module peak RSS <= 150 MB":44}{peak_mb:9.1f}  {verdict[goals["peak_rss_mb"]["passed"]]}')
    print()
    for index, (br, mr) in enumerate(zip(baselines, modules, strict=False), 1):
        print(
            f'round {index}: baseline {br["seconds"]:.2f} s, module {mr["seconds"]:.2f} s '
            f'(playbook {mr["playbook_seconds"]:.2f} s), module peak RSS '
            f'{mr["peak_rss_kib"] * 1024 / 1e6:.1f} MB'
        )

    return dict(
        meta,
        bytes=size,
        baseline=dict(
            seconds=round(b['seconds'], 3),
            mib_s=round(mib_s(size, b['seconds']), 1),
            glance_put_seconds=min(b_put) / 1000 if b_put else None,
            cpu_seconds=round(b['cpu'], 2),
            rounds=[round(r['seconds'], 3) for r in baselines],
        ),
        module=dict(
            seconds=round(m['seconds'], 3),
            mib_s=round(mib_s(size, m['seconds']), 1),
            playbook_seconds=round(m['playbook_seconds'], 3),
            glance_put_seconds=min(m_put) / 1000 if m_put else None,
            cpu_seconds=round(m['cpu_user'] + m['cpu_system'], 2),
            peak_rss_mb=round(peak_mb, 1),
            peak_rss_mib=round(peak_kib / 1024, 1),
            rounds=[
                dict(
                    seconds=round(r['seconds'], 3),
                    playbook_seconds=round(r['playbook_seconds'], 3),
                    peak_rss_mb=round(r['peak_rss_kib'] * 1024 / 1e6, 1),
                    cpu_seconds=round(r['cpu_user'] + r['cpu_system'], 2),
                )
                for r in modules
            ],
        ),
        ratio=round(ratio, 3),
        put_only_ratio=round(put_ratio, 3) if put_ratio else None,
        goals=goals,
        passed=all(g['passed'] for g in goals.values()),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--size-gib', type=float, default=2.0)
    parser.add_argument('--cloud', default='devcloud-alpha')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--keep-file', action='store_true', help='keep the test file')
    parser.add_argument(
        '--workdir',
        type=Path,
        default=Path(tempfile.gettempdir()) / 'imagegov-bench',
        help='where the test file lives (same disk as Glance: default %(default)s)',
    )
    parser.add_argument('--json', type=Path, default=RESULTS)
    parser.add_argument('--check', action='store_true', help='exit 1 when a goal is missed')
    args = parser.parse_args()

    clouds_yaml = clouds_yaml_path()
    if not clouds_yaml.is_file():
        raise SystemExit(f'{clouds_yaml} missing: start the devcloud first (./dev cloud start)')
    os.environ['OS_CLIENT_CONFIG_FILE'] = str(clouds_yaml)
    glance_log = clouds_yaml.parent / 'state' / 'logs' / 'glance.log'
    size = int(args.size_gib * GIB)
    path = args.workdir / f'upload-{size}.raw'

    if args.rounds < 1:
        raise SystemExit('--rounds must be at least 1')
    cloud: Cloud | None = None
    runner: ModuleRunner | None = None
    names: list[str] = []
    baselines: list[dict[str, Any]] = []
    modules: list[dict[str, Any]] = []
    try:
        seconds, reused = make_file(path, size)
        log(
            f'test file {path}: '
            + ('reused' if reused else f'written in {seconds:.1f} s ({mib_s(size, seconds):.0f} MiB/s)')
        )
        load_before = [round(x, 2) for x in os.getloadavg()]
        code = code_version()
        cache_seconds = read_through(path)
        log(f'read once into the page cache: {cache_seconds:.2f} s ({mib_s(size, cache_seconds):.0f} MiB/s)')
        cloud = Cloud(args.cloud)
        runner = ModuleRunner(args.workdir, args.cloud, clouds_yaml)
        tag = uuid.uuid4().hex[:8]
        for index in range(1, args.rounds + 1):
            log(f'round {index}: baseline PUT ...')
            baselines.append(run_baseline(cloud, path, glance_log, f'{tag}-r{index}'))
            log(f'round {index}: baseline {baselines[-1]["seconds"]:.2f} s')
            name = f'imagegov-bench-{tag}-r{index}-module'
            names.append(name)
            log(f'round {index}: module (ansible-playbook) ...')
            result = runner.run(cloud, path, glance_log, name)
            cloud.delete(result['image_id'])
            modules.append(result)
            log(
                f'round {index}: module {result["seconds"]:.2f} s, '
                f'peak RSS {result["peak_rss_kib"] * 1024 / 1e6:.1f} MB'
            )
    finally:
        problems = []
        if runner is not None:
            runner.stop_left_running()
        if cloud is not None:
            problems = cloud.cleanup(names)
        if runner is not None:
            runner.close()
        if not args.keep_file:
            path.unlink(missing_ok=True)
            path.with_suffix('.partial').unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                args.workdir.rmdir()
        if problems:
            print('cleanup problems:\n  ' + '\n  '.join(problems), file=sys.stderr)

    hashes = {r['os_hash_value'] for r in baselines + modules}
    if len(hashes) != 1:
        raise SystemExit(f'the uploads stored different bytes (os_hash_value {hashes})')
    meta = dict(
        load_before=load_before,
        load_after=[round(x, 2) for x in os.getloadavg()],
        code=code,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        machine=machine(),
        cloud=args.cloud,
        clouds_yaml=str(clouds_yaml),
        file=dict(path=str(path), reused=reused, page_cache_read_seconds=round(cache_seconds, 2)),
        page_cache='the file was in the page cache for every upload (read once beforehand)',
        rounds=args.rounds,
        sha256=modules[0]['sha256'],
    )
    results = report(size, baselines, modules, meta)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + '\n')
    print(f'\nwritten: {args.json}')
    return 0 if results['passed'] or not args.check else 1


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print('interrupted (images made by this run were deleted)', file=sys.stderr)
        sys.exit(130)
    except RuntimeError as exc:
        print(f'benchmark failed (images made by this run were deleted): {exc}', file=sys.stderr)
        sys.exit(1)
