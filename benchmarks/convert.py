"""Conversion + upload by imagegov.openstack.image (convert_to) against a bare qemu-img convert and PUT.

One run, against a running devcloud (``./dev cloud start``):

1. makes a vmdk test source of --size-gib virtual size (default 2 GiB; --subformat
   monolithicSparse, the default, or streamOptimized) in the work directory: a raw disk
   where of every four 64 MiB blocks three hold seeded pseudo-random bytes (distinct per
   block, incompressible) and the fourth is zeros (75 % data: a full disk, with some empty
   space for the formats to skip), converted with ``qemu-img convert -f raw -O vmdk``; an
   existing source of the right virtual size is reused (--keep-file keeps it). It is read
   once beforehand (its sha256 computed on the way), so every run reads it from the page
   cache;
2. baseline, timed as a whole: ``qemu-img convert -q -f vmdk -O qcow2`` into a temporary
   directory on the same disk, then POST /v2/images (qcow2/bare) and PUT of the output
   with ``requests`` (file object, Content-Length); the convert and the PUT are also timed
   on their own, and the output's allocated bytes (st_blocks * 512) are the reference of the
   scratch goal. The image and the output are deleted after each round;
3. module: ``ansible-playbook`` with one task ``imagegov.openstack.image`` (filename=the
   vmdk, convert_to: qcow2, scratch_dir: a dedicated empty directory, a private digest
   cache through IMAGEGOV_CACHE_DIR so nothing earlier lets it skip the conversion). The
   module's Python runs under upload.py's interpreter wrapper (wall time and peak RSS of
   the module process; ``ru_maxrss`` of RUSAGE_CHILDREN, which covers its qemu-img
   children too: the largest of them). While it runs, a thread samples every 20 ms the
   scratch directory's allocated bytes (the peak is the scratch goal), which of the source
   and the converted output the module process has open and which qemu-img subcommand its
   children run: the module's phases. The image is checked (one of that name, active,
   qcow2, the source's virtual size, ``imagegov_source_sha256`` = the source's sha256) and
   the scratch directory must be empty afterwards;
4. the same task again, same digest cache, on the unchanged source: must not convert
   (``content.source.converted`` false) nor upload (``changed`` false); its time is
   reported;
5. baseline and module alternate (--rounds, default 2: B M B M), best of each; prints a
   table with the goals (time ratio baseline/module >= 0.9, peak scratch <= 1.1 x the
   baseline output's allocated bytes, peak RSS <= 200 MB) and writes
   benchmarks/results/convert.json.

Every image made is deleted, also on failure or Ctrl-C.

    .venv/bin/python benchmarks/convert.py [--size-gib 2] [--subformat monolithicSparse]
        [--cloud devcloud-alpha] [--rounds 2] [--keep-file] [--workdir DIR] [--check]

OS_CLIENT_CONFIG_FILE selects the clouds.yaml; default $IMAGEGOV_DEVCLOUD_DIR/clouds.yaml,
then <repo>/.devcloud/clouds.yaml. --check exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench_common import REPO, clouds_yaml_path, code_version, log
from catalog_noop import CALLBACK
from upload import GIB, MIB, Cloud, ModuleRunner, best, glance_put_ms, machine, mib_s

RESULTS = REPO / 'benchmarks' / 'results' / 'convert.json'
BLOCK = 64 * MIB
SEED = 20261125
ZERO_EVERY = 4  # every 4th 64 MiB block is zeros: 75 % data
SUBFORMATS = ('monolithicSparse', 'streamOptimized')
TARGET = 'qcow2'
SOURCE_SHA256_PROPERTY = 'imagegov_source_sha256'
GOAL_RATIO = 0.9
GOAL_SCRATCH = 1.1  # x the baseline output's allocated bytes
GOAL_RSS_MB = 200.0  # MB = 10**6 bytes
SAMPLE_SECONDS = 0.02
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')

PLAYBOOK = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: Convert and upload the benchmark file
      imagegov.openstack.image:
        cloud: "{{ bench_cloud }}"
        name: "{{ bench_name }}"
        filename: "{{ bench_file }}"
        convert_to: qcow2
        scratch_dir: "{{ bench_scratch }}"
"""


# -- test source ------------------------------------------------------------------------


def qemu_img(*args: str) -> str:
    proc = subprocess.run(['qemu-img', *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f'qemu-img {" ".join(args)} failed ({proc.returncode}): {proc.stderr.strip()[:500]}')
    return proc.stdout


def virtual_size(path: Path, driver: str = 'vmdk') -> int | None:
    try:
        return json.loads(qemu_img('info', '--force-share', '-f', driver, '--output=json', str(path)))['virtual-size']
    except (RuntimeError, ValueError, KeyError):
        return None


def make_source(path: Path, size: int, subformat: str) -> tuple[float, bool]:
    """Write the vmdk (or reuse it when it has the right virtual size): a sparse raw disk
    with three of every four 64 MiB blocks pseudo-random, converted to vmdk."""
    if path.is_file() and virtual_size(path) == size:
        return 0.0, True
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    raw = path.with_name(path.name + '.raw-partial')
    partial = path.with_name(path.name + '.partial')
    try:
        with open(raw, 'wb') as out:
            out.truncate(size)  # the zero blocks stay holes
            for index, offset in enumerate(range(0, size, BLOCK)):
                if index % ZERO_EVERY == ZERO_EVERY - 1:
                    continue
                out.seek(offset)
                out.write(random.Random(SEED + index).randbytes(min(BLOCK, size - offset)))
        qemu_img('convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', f'subformat={subformat}', str(raw), str(partial))
        partial.rename(path)
    finally:
        raw.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return time.perf_counter() - start, False


def read_and_hash(path: Path) -> tuple[str, float]:
    """Read the source once (into the page cache) and hash it; returns (sha256, seconds)."""
    start = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, 'rb', buffering=0) as stream:
        buffer = bytearray(16 * MIB)
        view = memoryview(buffer)
        while count := stream.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest(), time.perf_counter() - start


def allocated(path: Path) -> int:
    """st_blocks * 512 of every file under ``path`` (files may vanish while it is walked)."""
    total = 0
    try:
        entries = list(os.scandir(path))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += allocated(Path(entry.path))
            else:
                total += entry.stat(follow_symlinks=False).st_blocks * 512
        except OSError:
            continue
    return total


# -- cloud access and the baseline ---------------------------------------------------------


class ConvertCloud(Cloud):
    def create(self, name: str, disk_format: str = TARGET) -> str:
        response = self.requests.post(
            f'{self.endpoint}/images',
            headers=self.headers(),
            json=dict(name=name, disk_format=disk_format, container_format='bare'),
            timeout=60,
        )
        response.raise_for_status()
        image_id = response.json()['id']
        self.made.add(image_id)
        return image_id


def run_baseline(cloud: ConvertCloud, source: Path, workdir: Path, glance_log: Path | None, tag: str) -> dict[str, Any]:
    out_dir = Path(tempfile.mkdtemp(prefix='convert-baseline-', dir=workdir))
    output = out_dir / f'out.{TARGET}'
    image_id = None
    try:
        start = time.perf_counter()
        qemu_img('convert', '-q', '-f', 'vmdk', '-O', TARGET, str(source), str(output))
        convert_seconds = time.perf_counter() - start
        image_id = cloud.create(f'imagegov-bench-{tag}-baseline')
        put_seconds, cpu = cloud.put(image_id, output)
        seconds = time.perf_counter() - start
        info = output.stat()
        image = cloud.get(image_id)
        if image['status'] != 'active' or image['size'] != info.st_size:
            raise RuntimeError(f'baseline image is {image["status"]}, size {image["size"]}')
        return dict(
            seconds=seconds,
            convert_seconds=convert_seconds,
            put_seconds=put_seconds,
            post_seconds=seconds - convert_seconds - put_seconds,
            cpu=cpu,
            output_size=info.st_size,
            output_allocated=info.st_blocks * 512,
            glance_put_ms=glance_put_ms(glance_log, image_id),
            os_hash_value=image.get('os_hash_value'),
        )
    finally:
        if image_id:
            cloud.delete(image_id)
        shutil.rmtree(out_dir, ignore_errors=True)


# -- the module, watched ---------------------------------------------------------------------


def _read(path: str) -> str:
    with open(path, encoding='utf-8', errors='replace') as stream:
        return stream.read()


def _hwm_kib(pid: int) -> int:
    for line in _read(f'/proc/{pid}/status').splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """Every SAMPLE_SECONDS while the playbook runs: the scratch directory's allocated bytes
    (with removed scratch files the module still holds open), which of the source and the
    converted output (anything under the scratch directory) the module process has open,
    which qemu-img subcommands its children run, the module's CPU time, and the peak RSS
    (VmHWM) of the module and of each qemu-img subcommand."""

    def __init__(self, scratch: Path, running: Path, source: Path) -> None:
        super().__init__(daemon=True)
        self.scratch, self.running, self.source = scratch, running, str(source)
        self.halt = threading.Event()
        self.peak = 0
        self.samples: list[tuple[float, int, frozenset[str], int]] = []
        self.pid: int | None = None
        self.hwm_kib: dict[str, int] = {}
        self.others: set[int] = set()

    def run(self) -> None:
        while not self.halt.is_set():
            now = time.time()
            labels, cpu_ticks, held = self._activity()
            scratch = allocated(self.scratch) + held
            self.peak = max(self.peak, scratch)
            self.samples.append((now, scratch, labels, cpu_ticks))
            self.halt.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self.halt.set()
        self.join()

    def _module_pid(self) -> int | None:
        if self.pid is None:
            with contextlib.suppress(OSError):
                for marker in self.running.iterdir():
                    with contextlib.suppress(OSError, ValueError):
                        if 'AnsiballZ_image' in _read(f'/proc/{int(marker.name)}/cmdline'):
                            self.pid = int(marker.name)
        return self.pid

    def _activity(self) -> tuple[frozenset[str], int, int]:
        """(what the module does, its CPU ticks, the allocated bytes of scratch files it
        still holds open after they were removed: they take disk space too)."""
        pid = self._module_pid()
        labels: set[str] = set()
        held: dict[tuple[int, int], int] = {}
        if pid is None:
            return frozenset(), 0, 0
        try:
            fields = _read(f'/proc/{pid}/stat').rsplit(')', 1)[1].split()
            cpu_ticks = int(fields[11]) + int(fields[12])
            self._peak('module process', _hwm_kib(pid))
            for fd in os.listdir(f'/proc/{pid}/fd'):
                with contextlib.suppress(OSError):
                    target = os.readlink(f'/proc/{pid}/fd/{fd}')
                    if target == self.source:
                        labels.add('module reads the source')
                    elif target.startswith(str(self.scratch) + os.sep):
                        labels.add('module reads the converted output')
                        if target.endswith(' (deleted)'):
                            info = os.stat(f'/proc/{pid}/fd/{fd}')
                            held[(info.st_dev, info.st_ino)] = info.st_blocks * 512
        except (OSError, IndexError, ValueError):
            return frozenset(labels), 0, sum(held.values())
        # No /proc/<pid>/task/<tid>/children on every kernel: children have larger pids, and
        # a process seen not to be a child is not read again.
        for entry in os.listdir('/proc'):
            if not entry.isdigit() or int(entry) <= pid or int(entry) in self.others:
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(_read(f'/proc/{entry}/stat').rsplit(')', 1)[1].split()[1]) != pid:
                    self.others.add(int(entry))
                    continue
                argv = _read(f'/proc/{entry}/cmdline').split('\0')
                if os.path.basename(argv[0]) == 'qemu-img':
                    label = f'qemu-img {argv[1]}'
                    labels.add(label)
                    self._peak(label, _hwm_kib(int(entry)))
        return frozenset(labels), cpu_ticks, sum(held.values())

    def _peak(self, label: str, kib: int) -> None:
        self.hwm_kib[label] = max(self.hwm_kib.get(label, 0), kib)

    def phases(self, start: float, seconds: float) -> list[dict[str, Any]]:
        """Each stretch of consecutive samples with the same activity, from the module
        process's start: seconds, and the module process's own CPU seconds meanwhile."""
        phases: list[dict[str, Any]] = []
        for when, _scratch, labels, ticks in self.samples:
            if not start <= when <= start + seconds:
                continue
            what = ' + '.join(sorted(labels)) or 'other (start-up, requests, hashing in memory...)'
            if phases and phases[-1]['what'] == what:
                phases[-1].update(end=when - start, ticks_end=ticks)
            else:
                phases.append(dict(what=what, start=when - start, end=when - start, ticks_start=ticks, ticks_end=ticks))
        for index, phase in enumerate(phases):
            # A stretch lasts until the next one starts (to one sample interval).
            phase['end'] = phases[index + 1]['start'] if index + 1 < len(phases) else seconds
            phase['seconds'] = phase['end'] - phase['start']
        for index, phase in enumerate(phases):
            ticks_next = phases[index + 1]['ticks_start'] if index + 1 < len(phases) else phase['ticks_end']
            phase['module_cpu'] = max(0, ticks_next - phase.pop('ticks_start')) / CLOCK_TICKS
            phase.pop('ticks_end')
        return [{k: round(v, 3) if isinstance(v, float) else v for k, v in p.items()} for p in phases]

    def scratch_times(self, start: float) -> dict[str, float | None]:
        used = [(when, scratch) for when, scratch, _labels, _ticks in self.samples if scratch]
        if not used:
            return dict(first=None, peak=None, last=None)
        peak = max(used, key=lambda item: item[1])
        return dict(
            first=round(used[0][0] - start, 3), peak=round(peak[0] - start, 3), last=round(used[-1][0] - start, 3)
        )


class ConvertRunner(ModuleRunner):
    """upload.py's runner (wrapper interpreter, collection link, environment) with this
    benchmark's playbook, and catalog_noop.py's callback that keeps the task's result."""

    def __init__(self, workdir: Path, cloud_name: str, clouds_yaml: Path) -> None:
        super().__init__(workdir, cloud_name, clouds_yaml)
        self.playbook.write_text(PLAYBOOK)
        plugins = self.dir / 'callback_plugins'
        plugins.mkdir()
        (plugins / 'bench_result.py').write_text(CALLBACK)
        self.result_file = self.dir / 'result.json'
        self.env.update(
            ANSIBLE_CALLBACK_PLUGINS=str(plugins),
            ANSIBLE_CALLBACKS_ENABLED='bench_result',
            BENCH_RESULT=str(self.result_file),
        )

    def play(self, name: str, source: Path, scratch: Path, cache_dir: Path) -> dict[str, Any]:
        self.rss_log.unlink(missing_ok=True)
        self.result_file.unlink(missing_ok=True)
        extra = json.dumps(
            dict(
                bench_cloud=self.cloud_name,
                bench_name=name,
                bench_file=str(source),
                bench_scratch=str(scratch),
                ansible_python_interpreter=str(self.interpreter),
            )
        )
        sampler = Sampler(scratch, self.running, source)
        sampler.start()
        try:
            start = time.perf_counter()
            proc = subprocess.run(
                [self.ansible_playbook, '-i', 'localhost,', '-c', 'local', '-e', extra, str(self.playbook)],
                env=dict(self.env, IMAGEGOV_CACHE_DIR=str(cache_dir)),
                cwd=self.dir,
                capture_output=True,
                text=True,
                check=False,
            )
            playbook_seconds = time.perf_counter() - start
        finally:
            sampler.stop()
        if proc.returncode != 0:
            raise RuntimeError(
                f'ansible-playbook failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}'
            )
        runs = [json.loads(line) for line in self.rss_log.read_text().splitlines()] if self.rss_log.is_file() else []
        runs = [r for r in runs if any('AnsiballZ_image' in a for a in r['argv'])] or runs
        if len(runs) != 1:
            raise RuntimeError(f'expected one module process under the wrapper, got {runs}')
        record = runs[0]
        result = json.loads(self.result_file.read_text()) if self.result_file.is_file() else None
        if not isinstance(result, dict):
            raise RuntimeError(f'no task result recorded:\n{proc.stdout[-3000:]}')
        left = [str(p.relative_to(scratch)) for p in scratch.rglob('*')]
        if left:
            raise RuntimeError(f'the scratch directory is not empty after the run: {left}')
        return dict(
            seconds=record['seconds'],
            playbook_seconds=playbook_seconds,
            peak_rss_kib=record['maxrss_kib'],
            cpu_user=record['user'],
            cpu_system=record['system'],
            result=result,
            peak_scratch=sampler.peak,
            sampled_hwm_kib=sampler.hwm_kib,
            samples=len(sampler.samples),
            phases=sampler.phases(record['start'], record['seconds']),
            scratch_times=sampler.scratch_times(record['start']),
        )


def check_image(cloud: ConvertCloud, name: str, source_sha256: str, size: int) -> dict[str, Any]:
    images = cloud.find(name)
    if len(images) != 1:
        raise RuntimeError(f'expected one image named {name!r}, found {len(images)}')
    image = images[0]
    problems = []
    if image['status'] != 'active':
        problems.append(f'status {image["status"]}')
    if image.get('disk_format') != TARGET:
        problems.append(f'disk_format {image.get("disk_format")}')
    if image.get('virtual_size') not in (None, size):
        problems.append(f'virtual_size {image.get("virtual_size")} (the source: {size})')
    if image.get(SOURCE_SHA256_PROPERTY) != source_sha256:
        problems.append(f'{SOURCE_SHA256_PROPERTY} {image.get(SOURCE_SHA256_PROPERTY)!r} (the source: {source_sha256})')
    if problems:
        raise RuntimeError(f'module image {image["id"]}: ' + ', '.join(problems))
    return image


def run_module(
    cloud: ConvertCloud,
    runner: ConvertRunner,
    source: Path,
    source_sha256: str,
    size: int,
    workdir: Path,
    glance_log: Path | None,
    name: str,
) -> dict[str, Any]:
    """The conversion + upload, then the same task on the unchanged source (same cache)."""
    scratch = Path(tempfile.mkdtemp(prefix='convert-scratch-', dir=workdir))
    cache_dir = Path(tempfile.mkdtemp(prefix='convert-cache-', dir=runner.dir))
    try:
        first = runner.play(name, source, scratch, cache_dir)
        image = check_image(cloud, name, source_sha256, size)
        described = (first['result'].get('content') or {}).get('source') or {}
        if not (first['result'].get('changed') and described.get('converted')):
            raise RuntimeError(
                f'the first run did not convert and upload: changed {first["result"].get("changed")}, '
                f'content.source {described}'
            )
        second = runner.play(name, source, scratch, cache_dir)
        again = (second['result'].get('content') or {}).get('source') or {}
        if check_image(cloud, name, source_sha256, size)['id'] != image['id']:
            raise RuntimeError('the second run replaced the image')
        cloud.delete(image['id'])
        return dict(
            first,
            image_id=image['id'],
            glance_put_ms=glance_put_ms(glance_log, image['id']),
            os_hash_value=image.get('os_hash_value'),
            glance_virtual_size=image.get('virtual_size'),
            content_source=described,
            second=dict(
                seconds=second['seconds'],
                playbook_seconds=second['playbook_seconds'],
                peak_rss_kib=second['peak_rss_kib'],
                changed=second['result'].get('changed'),
                converted=again.get('converted'),
                content_source=again,
                peak_scratch=second['peak_scratch'],
                phases=second['phases'],
            ),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(cache_dir, ignore_errors=True)


# -- report ----------------------------------------------------------------------------------


def mb(kib: int) -> float:
    return kib * 1024 / 1e6


def report(
    size: int, baselines: list[dict[str, Any]], modules: list[dict[str, Any]], meta: dict[str, Any]
) -> dict[str, Any]:
    b, m = best(baselines), best(modules)
    second = min((r['second'] for r in modules), key=lambda r: r['seconds'])
    ratio = b['seconds'] / m['seconds']
    reference = min(r['output_allocated'] for r in baselines)
    peak_scratch = max(r['peak_scratch'] for r in modules)
    scratch_ratio = peak_scratch / reference
    peak_kib = max(r['peak_rss_kib'] for r in modules)
    peak_mb = mb(peak_kib)
    goals = dict(
        ratio=dict(goal=f'>= {GOAL_RATIO}', value=round(ratio, 3), passed=ratio >= GOAL_RATIO),
        peak_scratch=dict(
            goal=f'<= {GOAL_SCRATCH} x {reference} bytes',
            value=peak_scratch,
            ratio=round(scratch_ratio, 4),
            passed=scratch_ratio <= GOAL_SCRATCH,
        ),
        peak_rss_mb=dict(goal=f'<= {GOAL_RSS_MB:g}', value=round(peak_mb, 1), passed=peak_mb <= GOAL_RSS_MB),
    )
    verdict = {True: 'PASS', False: 'MISS'}
    b_put = [r['glance_put_ms'] for r in baselines if r['glance_put_ms']]
    m_put = [r['glance_put_ms'] for r in modules if r['glance_put_ms']]
    src = meta['source']
    same_bytes = len({r['os_hash_value'] for r in baselines + modules}) == 1

    print()
    print(
        f'Conversion benchmark: {size / GIB:g} GiB vmdk ({src["subformat"]}, {src["bytes"] / MIB:.0f} MiB file, '
        f'75 % data) -> {TARGET}, {len(baselines)} rounds each, best of each'
    )
    print('The source was in the page cache for every run (read once beforehand); baseline and module alternated.')
    print(f'{"":44}{"seconds":>9}')
    print(f'{"baseline: qemu-img convert + POST + PUT":44}{b["seconds"]:9.2f}')
    print(f'{"  qemu-img convert":44}{b["convert_seconds"]:9.2f}')
    print(f'{"  PUT (requests)":44}{b["put_seconds"]:9.2f}')
    print(f'{"module: imagegov.openstack.image":44}{m["seconds"]:9.2f}')
    print(f'{"  (whole ansible-playbook run)":44}{m["playbook_seconds"]:9.2f}')
    if b_put and m_put:
        print(f'{"  Glance-side PUT: baseline / module":44}{min(b_put) / 1000:9.2f} / {min(m_put) / 1000:.2f}')
    print(f'{"module again, unchanged source":44}{second["seconds"]:9.2f}')
    print(
        f'output: {b["output_size"]} bytes, {reference} allocated ({reference / MIB:.1f} MiB); '
        f'same bytes stored by baseline and module: {"yes" if same_bytes else "NO"}'
    )
    hwm = {k: max(r['sampled_hwm_kib'].get(k, 0) for r in modules) for k in m['sampled_hwm_kib']}
    print(
        'sampled peak RSS: '
        + ', '.join(f'{label} {mb(kib):.1f} MB' for label, kib in sorted(hwm.items()))
        + f'; client CPU: baseline PUT {b["cpu"]:.2f} s, module process (with its children) '
        f'{m["cpu_user"] + m["cpu_system"]:.2f} s'
    )
    print(
        f'load average before/after: {meta["load_before"]} / {meta["load_after"]}; '
        f'plugins/ {meta["code"]["plugins_sha256"]} at {meta["code"]["commit"]}'
        + (' (modified)' if meta['code']['plugins_modified'] else '')
    )
    print()
    print(f'{"goal":48}{"value":>10}  result')
    print(f'{f"time ratio baseline/module >= {GOAL_RATIO}":48}{ratio:10.3f}  {verdict[goals["ratio"]["passed"]]}')
    print(
        f'{f"peak scratch <= {GOAL_SCRATCH} x output allocated":48}{scratch_ratio:10.3f}  '
        f'{verdict[goals["peak_scratch"]["passed"]]} ({peak_scratch / MIB:.1f} of {reference / MIB:.1f} MiB)'
    )
    print(f'{f"module peak RSS <= {GOAL_RSS_MB:g} MB":48}{peak_mb:10.1f}  {verdict[goals["peak_rss_mb"]["passed"]]}')
    print()
    print(
        f'unchanged source: {second["seconds"]:.2f} s, '
        + ('no conversion' if second['converted'] is False else f'CONVERTED ({second["converted"]!r})')
        + ', '
        + ('no upload' if second['changed'] is False else f'CHANGED ({second["changed"]!r})')
    )
    for index, (br, mr) in enumerate(zip(baselines, modules, strict=False), 1):
        print(
            f'round {index}: baseline {br["seconds"]:.2f} s (convert {br["convert_seconds"]:.2f} + PUT '
            f'{br["put_seconds"]:.2f}), module {mr["seconds"]:.2f} s (playbook {mr["playbook_seconds"]:.2f} s, '
            f'peak RSS {mb(mr["peak_rss_kib"]):.1f} MB, peak scratch {mr["peak_scratch"] / MIB:.1f} MiB), '
            f'again {mr["second"]["seconds"]:.2f} s'
        )
    print()
    print(f"where the module's time goes (best round, {SAMPLE_SECONDS * 1000:.0f} ms samples of /proc):")
    for phase in m['phases']:
        print(
            f'  {phase["start"]:6.2f} {phase["end"]:6.2f}  {phase["seconds"]:6.2f} s  '
            f'module CPU {phase["module_cpu"]:5.2f} s  {phase["what"]}'
        )
    print(f'  scratch in use from {m["scratch_times"]["first"]} s to {m["scratch_times"]["last"]} s')

    rounded = {'seconds', 'convert_seconds', 'put_seconds', 'post_seconds', 'cpu', 'playbook_seconds'}
    return dict(
        meta,
        bytes=size,
        baseline=dict(
            best={k: round(v, 3) if k in rounded else v for k, v in b.items()},
            rounds=[{k: round(v, 3) if k in rounded else v for k, v in r.items()} for r in baselines],
            glance_put_seconds=min(b_put) / 1000 if b_put else None,
        ),
        module=dict(
            seconds=round(m['seconds'], 3),
            playbook_seconds=round(m['playbook_seconds'], 3),
            glance_put_seconds=min(m_put) / 1000 if m_put else None,
            peak_rss_mb=round(peak_mb, 1),
            sampled_peak_rss_mb={k: round(mb(v), 1) for k, v in hwm.items()},
            peak_scratch=peak_scratch,
            rounds=[
                dict(
                    {k: v for k, v in r.items() if k not in ('result', 'second')},
                    seconds=round(r['seconds'], 3),
                    playbook_seconds=round(r['playbook_seconds'], 3),
                    peak_rss_mb=round(mb(r['peak_rss_kib']), 1),
                    cpu_seconds=round(r['cpu_user'] + r['cpu_system'], 2),
                    second=dict(
                        r['second'],
                        seconds=round(r['second']['seconds'], 3),
                        playbook_seconds=round(r['second']['playbook_seconds'], 3),
                    ),
                )
                for r in modules
            ],
        ),
        unchanged_source=dict(
            seconds=round(second['seconds'], 3), converted=second['converted'], changed=second['changed']
        ),
        same_bytes_stored=same_bytes,
        ratio=round(ratio, 3),
        goals=goals,
        passed=all(g['passed'] for g in goals.values()),
    )


# -- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--size-gib', type=float, default=2.0, help='virtual size of the vmdk')
    parser.add_argument('--subformat', choices=SUBFORMATS, default=SUBFORMATS[0])
    parser.add_argument('--cloud', default='devcloud-alpha')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--keep-file', action='store_true', help='keep the test source')
    parser.add_argument(
        '--workdir',
        type=Path,
        default=Path(tempfile.gettempdir()) / 'imagegov-bench',
        help='test source, baseline output and scratch directories (same disk: default %(default)s)',
    )
    parser.add_argument('--json', type=Path, default=RESULTS)
    parser.add_argument('--check', action='store_true', help='exit 1 when a goal is missed')
    args = parser.parse_args()

    clouds_yaml = clouds_yaml_path()
    if not clouds_yaml.is_file():
        raise SystemExit(f'{clouds_yaml} missing: start the devcloud first (./dev cloud start)')
    os.environ['OS_CLIENT_CONFIG_FILE'] = str(clouds_yaml)
    glance_log = clouds_yaml.parent / 'state' / 'logs' / 'glance.log'
    size = int(args.size_gib * GIB) // MIB * MIB
    if size <= 0 or args.rounds < 1:
        raise SystemExit('--size-gib must be at least 1 MiB and --rounds at least 1')
    args.workdir = args.workdir.resolve()
    path = args.workdir / f'convert-{size}-{args.subformat}.vmdk'

    cloud: ConvertCloud | None = None
    runner: ConvertRunner | None = None
    names: list[str] = []
    baselines: list[dict[str, Any]] = []
    modules: list[dict[str, Any]] = []
    try:
        seconds, reused = make_source(path, size, args.subformat)
        log(f'test source {path}: ' + ('reused' if reused else f'written in {seconds:.1f} s'))
        load_before = [round(x, 2) for x in os.getloadavg()]
        code = code_version()
        source_sha256, cache_seconds = read_and_hash(path)
        source_bytes, source_allocated = path.stat().st_size, path.stat().st_blocks * 512
        log(
            f'read once into the page cache and hashed: {cache_seconds:.2f} s '
            f'({mib_s(source_bytes, cache_seconds):.0f} MiB/s), {source_bytes} bytes, sha256 {source_sha256[:16]}...'
        )
        cloud = ConvertCloud(args.cloud)
        runner = ConvertRunner(args.workdir, args.cloud, clouds_yaml)
        tag = uuid.uuid4().hex[:8]
        for index in range(1, args.rounds + 1):
            log(f'round {index}: baseline qemu-img convert + PUT ...')
            baselines.append(run_baseline(cloud, path, args.workdir, glance_log, f'{tag}-r{index}'))
            br = baselines[-1]
            log(
                f'round {index}: baseline {br["seconds"]:.2f} s (convert {br["convert_seconds"]:.2f} s, '
                f'PUT {br["put_seconds"]:.2f} s), output {br["output_allocated"] / MIB:.1f} MiB allocated'
            )
            name = f'imagegov-bench-{tag}-r{index}-module'
            names.append(name)
            log(f'round {index}: module (ansible-playbook), then again on the unchanged source ...')
            result = run_module(cloud, runner, path, source_sha256, size, args.workdir, glance_log, name)
            modules.append(result)
            log(
                f'round {index}: module {result["seconds"]:.2f} s, peak RSS {mb(result["peak_rss_kib"]):.1f} MB, '
                f'peak scratch {result["peak_scratch"] / MIB:.1f} MiB; again {result["second"]["seconds"]:.2f} s'
            )
    finally:
        problems = []
        if runner is not None:
            runner.stop_left_running()
        if cloud is not None:
            problems = cloud.cleanup(names)
        if runner is not None:
            runner.close()
        for leftover in list(args.workdir.glob('convert-scratch-*')) + list(args.workdir.glob('convert-baseline-*')):
            shutil.rmtree(leftover, ignore_errors=True)
        if not args.keep_file:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                args.workdir.rmdir()
        if problems:
            print('cleanup problems:\n  ' + '\n  '.join(problems), file=sys.stderr)

    meta = dict(
        load_before=load_before,
        load_after=[round(x, 2) for x in os.getloadavg()],
        code=code,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        machine=machine(),
        cloud=args.cloud,
        clouds_yaml=str(clouds_yaml),
        source=dict(
            path=str(path),
            subformat=args.subformat,
            virtual_size=size,
            bytes=source_bytes,
            allocated=source_allocated,
            data_fraction=1 - 1 / ZERO_EVERY,
            sha256=source_sha256,
            reused=reused,
            page_cache_read_seconds=round(cache_seconds, 2),
        ),
        page_cache='the source was in the page cache for every run (read once beforehand)',
        rounds=args.rounds,
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
