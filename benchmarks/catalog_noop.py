"""No-op reconcile of a 1,000-image catalog: imagegov.openstack.catalog against openstack.cloud.image.

One run, against a running devcloud (``./dev cloud start``):

1. writes --images (default 1,000) small files (64 distinct bytes each, so every sha256
   differs) and a catalog of them: half in series (--series of them, every build kept), half
   single images, each with a few properties and a tag;
2. seeds the cloud directly through Glance's API, 4 threads (POST the record with the
   attributes, the properties, the ``owner_specified.openstack.sha256`` and
   ``imagegov_catalog`` markers the module would set; PUT the bytes);
3. ours: ``ansible-playbook`` with one task ``imagegov.openstack.catalog`` over that catalog,
   in check mode, then applied (--rounds times each). Each must report nothing to do
   (every item ``noop``, ``changed`` false). Timed: the whole ansible-playbook process
   (wall). Requests: the module's ``requests`` and the request lines (``req:``) Glance and
   Keystone log during the run;
4. peer: ``openstack.cloud.image`` (ansible 12.3.0, openstack.cloud 2.5.0, openstacksdk
   4.14.0 in their own virtualenv, ``benchmarks/results/venv-peer``, made on first use) in a
   loop over --peer-sample images (default 100) with the same name, formats, min_disk,
   min_ram, visibility, tags and properties as they are in Glance, no filename. Timed and
   counted the same way; with a sample smaller than --images, time and requests are
   extrapolated linearly to --images and the output says so;
5. prints a table with the goals (ours <= 5 s wall and <= images/1000 + 10 requests per
   run; peer/ours >= 50x) and writes benchmarks/results/catalog_noop.json.

The seeded images are deleted at the end (8 threads), also on failure or Ctrl-C, unless
--keep is given; --prefix reuses images a --keep run left (the catalog is made again from
the prefix, byte for byte), so a large catalog is seeded once.

--scale measures the 10,000-image goals instead (default 10,000 images, no peer, 3 rounds):
the wall time of each no-op run against the sum of Glance's own serving times of the
image-list pages in that run (the ``<N>ms`` of Glance's ``GET /v2/images`` request lines),
wall <= 1.3 x that sum; requests <= ceil(images/1000) + 10; the module's peak RSS <= 300 MB
(its Python runs under a small interpreter wrapper: wall time, CPU, ``ru_maxrss``); the task
result small (<= 64 KiB of JSON: a summary plus the items that are not noop). Every run
also records these figures without --scale. --profile runs the module under cProfile
(one .prof file per run in that directory; the timings are then not the goal's).

    .venv/bin/python benchmarks/catalog_noop.py [--images 1000] [--peer-sample 100] [--rounds 2]
        [--cloud devcloud-alpha] [--keep] [--prefix bench-noop-xxxxxx] [--scale] [--profile DIR] [--check]

OS_CLIENT_CONFIG_FILE selects the clouds.yaml; default $IMAGEGOV_DEVCLOUD_DIR/clouds.yaml,
then <repo>/.devcloud/clouds.yaml. Glance's and Keystone's logs are read from
$IMAGEGOV_DEVCLOUD_DIR/state/logs (default <repo>/.devcloud). --check exits 1 when a goal
is missed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench_common import REPO, BenchCloud, clouds_yaml_path, code_version, log

RESULTS = REPO / 'benchmarks' / 'results'
PEER_VENV = RESULTS / 'venv-peer'
PEER_PACKAGES = ['ansible==12.3.0', 'openstacksdk==4.14.0']
SHA256_PROPERTY = 'owner_specified.openstack.sha256'
MANAGED_BY_PROPERTY = 'imagegov_catalog'
GOAL_SECONDS = 5.0
GOAL_RATIO = 50.0
# --scale: wall <= 1.3 x Glance's own page-serving time, <= ceil(N/1000) + 10
# requests, peak RSS <= 300 MB (10**6 bytes), a small task result.
GOAL_GLANCE_FACTOR = 1.3
GOAL_RSS_MB = 300.0
GOAL_RESULT_BYTES = 64 * 1024
DISTROS = ['ubuntu', 'debian', 'rocky', 'alma', 'fedora']

OURS_PLAYBOOK = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: Reconcile the catalog
      imagegov.openstack.catalog:
        cloud: "{{ bench_cloud }}"
        catalog: ["{{ bench_catalog }}"]
        name: "{{ bench_name }}"
        report_plan: "{{ bench_report_plan | default(omit) }}"
"""

# Every module run pays this whatever the catalog: ansible-playbook's start-up, the module's
# interpreter, imports and authentication, and one Glance request (an image id that does not
# exist). With --scale it is measured after each round, so that the goal can be read against
# what is left for reading, planning and reporting the catalog.
FLOOR_PLAYBOOK = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: One image by id, none found
      imagegov.openstack.image_info:
        cloud: "{{ bench_cloud }}"
        id: 00000000-0000-4000-8000-000000000000
"""

PEER_PLAYBOOK = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: One image at a time, as openstack.cloud.image does it
      openstack.cloud.image:
        cloud: "{{ bench_cloud }}"
        name: "{{ item.name }}"
        disk_format: "{{ item.disk_format }}"
        container_format: "{{ item.container_format }}"
        min_disk: "{{ item.min_disk }}"
        min_ram: "{{ item.min_ram }}"
        visibility: "{{ item.visibility }}"
        tags: "{{ item.tags }}"
        properties: "{{ item.properties }}"
      loop: "{{ lookup('ansible.builtin.file', bench_images) | from_json }}"
      loop_control: {label: "{{ item.name }}"}
"""


# Writes the first task's result to $BENCH_RESULT when the play ends: adds no task to the
# timed run, and works with both ansible-core versions.
CALLBACK = """import json, os
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_result'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.result = None

    def v2_runner_on_ok(self, result):
        if self.result is None:
            self.result = result._result

    def v2_playbook_on_stats(self, stats):
        with open(os.environ['BENCH_RESULT'], 'w') as out:
            json.dump(self.result, out, default=str)
"""


# Runs as the module's "Python interpreter" (as in upload.py): runs the real one as its only
# child (under cProfile when BENCH_PROFILE_DIR is set) and appends one JSON line with the
# child's wall time, CPU time and peak RSS.
WRAPPER = """#!{python}
import json, os, resource, subprocess, sys, time
start = time.time()
t0 = time.perf_counter()
profile = os.environ.get('BENCH_PROFILE_DIR')
argv = sys.argv[1:]
if profile and any('AnsiballZ_' in a for a in argv):
    out = os.path.join(profile, 'module-%d-%d.prof' % (int(start), os.getpid()))
    # not -m cProfile: AnsiballZ strips its __main__'s directory (the stdlib's) from sys.path
    boot = ("import cProfile, runpy, sys; out = sys.argv[1]; sys.argv = sys.argv[2:]; "
            "cProfile.run('runpy.run_path(sys.argv[0], run_name=__name__)', out)")
    argv = ['-c', boot, out] + argv
rc = subprocess.call([{python!r}] + argv)
seconds = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open({log!r}, 'a') as log:
    log.write(json.dumps(dict(argv=sys.argv[1:], rc=rc, start=start, seconds=seconds,
                              maxrss_kib=usage.ru_maxrss, user=usage.ru_utime,
                              system=usage.ru_stime)) + '\\n')
sys.exit(rc)
"""


# -- the catalog ------------------------------------------------------------------------------


def make_catalog(
    workdir: Path, prefix: str, count: int, series: int, shared: int = 0, member: str | None = None
) -> list[dict[str, Any]]:
    """Files with distinct bytes, the catalog naming them, and the images as Glance should hold them."""
    in_series = count // 2 if series else 0
    per_series = in_series // series if series else 0
    in_series = per_series * series
    images, lines = (
        [],
        [
            'version: 1',
            'defaults:',
            '  disk_format: raw',
            '  visibility: private',
            '  tags: [gold]',
            '  properties: {architecture: x86_64}',
            'images:',
        ],
    )

    def image(
        name: str, file: Path, properties: dict[str, str], min_disk: int, min_ram: int, members: list[str] | None = None
    ) -> dict[str, Any]:
        data = hashlib.sha512(name.encode()).digest()  # 64 distinct bytes per image
        if not file.is_file() or file.read_bytes() != data:  # a reused catalog keeps its files' mtimes
            file.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        props = dict({'architecture': 'x86_64'}, **properties)
        props.update({SHA256_PROPERTY: sha, MANAGED_BY_PROPERTY: prefix})
        images.append(
            dict(
                name=name,
                disk_format='raw',
                container_format='bare',
                min_disk=min_disk,
                min_ram=min_ram,
                visibility='shared' if members else 'private',
                tags=['gold'],
                properties=props,
                data=data,
                members=members or [],
            )
        )
        return dict(sha256=sha, file=str(file))

    for s in range(series if per_series else 0):
        distro = DISTROS[s % len(DISTROS)]
        lines += [
            f'  - series: {prefix}-s{s}',
            f'    name: "{prefix}-s{s}-{{version}}"',
            f'    keep: {per_series}',
            f'    min_disk: {s % 3}',
            f'    properties: {{os_distro: {distro}, os_version: "{s}.0"}}',
            '    versions:',
        ]
        for v in range(per_series):
            version = f'2026{v + 1:04d}'
            # The records the catalog keeps on every build of a series.
            records = {'imagegov_series': f'{prefix}-s{s}', 'imagegov_version': version}
            made = image(
                f'{prefix}-s{s}-{version}',
                workdir / f's{s}-v{v}.raw',
                {'os_distro': distro, 'os_version': f'{s}.0', **records},
                s % 3,
                0,
            )
            lines += [
                f'      - version: "{version}"',
                f'        source: {{file: {made["file"]}}}',
                f'        sha256: {made["sha256"]}',
            ]
    for i in range(count - in_series):
        name = f'{prefix}-single-{i:04d}'
        members = [member] if i < shared and member else None
        made = image(
            name, workdir / f'single-{i}.raw', {'os_distro': 'cirros', 'build': str(i)}, 0, 64 * (i % 4), members
        )
        lines += [
            f'  - name: {name}',
            f'    source: {{file: {made["file"]}}}',
            f'    sha256: {made["sha256"]}',
            f'    min_ram: {64 * (i % 4)}',
            f'    properties: {{os_distro: cirros, build: "{i}"}}',
        ]
        if members:
            lines += ['    visibility: shared', f'    members: [{member}]']
    (workdir / 'catalog.yml').write_text('\n'.join(lines) + '\n')
    return images


# -- cloud access -------------------------------------------------------------------------------


class Cloud(BenchCloud):
    def __init__(self, cloud: str, region: str | None = None) -> None:
        super().__init__(cloud, region)
        self.token = self.conn.session.get_token()
        self.local = threading.local()
        self.lock = threading.Lock()

    def session(self) -> Any:
        if not hasattr(self.local, 'session'):
            self.local.session = self.requests.Session()
            self.local.session.headers['X-Auth-Token'] = self.token
        return self.local.session

    def seed(self, image: dict[str, Any]) -> str:
        fields = {k: v for k, v in image.items() if k not in ('properties', 'data', 'members')}
        fields.update(image['properties'])
        response = self.session().post(f'{self.endpoint}/images', json=fields, timeout=60)
        if response.status_code != 201:
            raise RuntimeError(f'creating {image["name"]}: HTTP {response.status_code}: {response.text[:300]}')
        image_id = response.json()['id']
        with self.lock:
            self.made.add(image_id)
        response = self.session().put(
            f'{self.endpoint}/images/{image_id}/file',
            data=image['data'],
            timeout=60,
            headers={'Content-Type': 'application/octet-stream'},
        )
        if response.status_code != 204:
            raise RuntimeError(f'uploading {image["name"]}: HTTP {response.status_code}: {response.text[:300]}')
        for member in image['members']:
            response = self.session().post(
                f'{self.endpoint}/images/{image_id}/members', json={'member': member}, timeout=60
            )
            if response.status_code != 200:
                raise RuntimeError(f'sharing {image["name"]}: HTTP {response.status_code}: {response.text[:300]}')
        return image_id

    def listing(self, prefix: str) -> list[dict[str, Any]]:
        """The project's images whose names start with prefix, hidden ones too."""
        found = []
        for hidden in ('false', 'true'):
            params: Any = dict(owner=self.project_id, os_hidden=hidden, limit=1000, visibility='all')
            url = f'{self.endpoint}/images'
            while url:
                body = self.session().get(url, params=params, timeout=60).json()
                found += [i for i in body.get('images', []) if str(i.get('name', '')).startswith(prefix)]
                url = self.endpoint[:-3] + body['next'] if body.get('next') and body.get('images') else None
                params = None
        return found

    def delete(self, image_id: str) -> None:
        response = self.session().delete(f'{self.endpoint}/images/{image_id}', timeout=120)
        if response.status_code not in (204, 404):
            raise RuntimeError(f'deleting {image_id}: HTTP {response.status_code}: {response.text[:200]}')
        with self.lock:
            self.made.discard(image_id)

    def cleanup(self, prefix: str) -> list[str]:
        problems = []
        try:
            self.made.update(i['id'] for i in self.listing(prefix))
        except Exception as exc:  # keep cleaning what is known
            problems.append(f'listing {prefix}*: {exc}')
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(self.delete, image_id) for image_id in sorted(self.made)]:
                try:
                    future.result()
                except Exception as exc:
                    problems.append(str(exc))
        return problems


class RequestLog:
    """Request lines ('req: ...') the devcloud's services log, counted around one run."""

    def __init__(self, logs: Path) -> None:
        self.files = {name: logs / f'{name}.log' for name in ('glance', 'keystone')}

    def mark(self) -> dict[str, int]:
        return {name: path.stat().st_size if path.is_file() else 0 for name, path in self.files.items()}

    def since(self, mark: dict[str, int]) -> dict[str, list[str]]:
        lines = {}
        for name, path in self.files.items():
            if not path.is_file():
                lines[name] = []
                continue
            with open(path, 'rb') as stream:
                stream.seek(mark[name])
                text = stream.read().decode('utf-8', 'replace')
            lines[name] = [line for line in text.splitlines() if line.startswith('req:')]
        return lines


def listing_ms(lines: list[str]) -> list[int]:
    """Glance's own serving time (ms) of each image-list page (GET /v2/images, any query)."""
    pages = []
    for line in lines:
        match = re.search(r'"GET /v2/images(?:\?\S*)? HTTP[^"]*" \d+ \S+ (\d+)ms', line)
        if match:
            pages.append(int(match.group(1)))
    return pages


def kinds(lines: list[str]) -> dict[str, int]:
    """Requests by method and path shape (ids replaced), most frequent first."""
    counter: Counter = Counter()
    for line in lines:
        match = re.search(r'"(\w+) (\S+) HTTP', line)
        if match:
            path = re.sub(r'[0-9a-f]{8}-[0-9a-f-]{27}', '{id}', match.group(2).split('?')[0])
            counter[f'{match.group(1)} {path}'] += 1
    return dict(counter.most_common())


# -- the two sides -------------------------------------------------------------------------------


def ansible_env(workdir: Path, clouds_yaml: Path, venv_bin: str, collections: str) -> dict[str, str]:
    (workdir / 'tmp').mkdir(exist_ok=True)
    return dict(
        {
            k: v
            for k, v in os.environ.items()
            if not k.startswith('ANSIBLE_') and k not in ('IMAGEGOV_POLICY', 'IMAGEGOV_BASE_POLICY')
        },
        PATH=f'{venv_bin}:{os.environ.get("PATH", "")}',
        OS_CLIENT_CONFIG_FILE=str(clouds_yaml),
        ANSIBLE_COLLECTIONS_PATH=collections,
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_PYTHON_INTERPRETER=str(Path(venv_bin) / 'python'),
        ANSIBLE_LOCAL_TEMP=str(workdir / 'tmp'),
        ANSIBLE_REMOTE_TMP=str(workdir / 'tmp'),
        ANSIBLE_RETRY_FILES_ENABLED='false',
        ANSIBLE_LOCALHOST_WARNING='false',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
        ANSIBLE_DEPRECATION_WARNINGS='false',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_CALLBACK_PLUGINS=str(workdir / 'callback_plugins'),
        ANSIBLE_CALLBACKS_ENABLED='bench_result',
        BENCH_RESULT=str(workdir / 'result.json'),
    )


def module_wrapper(workdir: Path, env: dict[str, str], profile: Path | None) -> Path:
    """Makes the module's Python run under WRAPPER; returns the file its runs are logged in."""
    wrapper = workdir / 'python-wrapper'
    runs = workdir / 'module-runs.jsonl'
    wrapper.write_text(WRAPPER.format(python=env['ANSIBLE_PYTHON_INTERPRETER'], log=str(runs)))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env['ANSIBLE_PYTHON_INTERPRETER'] = str(wrapper)
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
        env['BENCH_PROFILE_DIR'] = str(profile.resolve())
    env['BENCH_MODULE_RUNS'] = str(runs)
    return runs


def run_playbook(
    env: dict[str, str],
    venv_bin: str,
    playbook: Path,
    extra: dict[str, Any],
    check: bool,
    requests_log: RequestLog,
    cwd: Path,
) -> dict[str, Any]:
    Path(env['BENCH_RESULT']).unlink(missing_ok=True)
    if env.get('BENCH_MODULE_RUNS'):
        Path(env['BENCH_MODULE_RUNS']).unlink(missing_ok=True)
    mark = requests_log.mark()
    command = [
        str(Path(venv_bin) / 'ansible-playbook'),
        '-i',
        'localhost,',
        '-c',
        'local',
        '-e',
        json.dumps(extra),
        str(playbook),
    ] + (['--check'] if check else [])
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f'ansible-playbook {playbook.name} failed (rc {proc.returncode}):\n'
            f'{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}'
        )
    time.sleep(0.3)  # uwsgi writes its request line after the response
    lines = requests_log.since(mark)
    result_text = Path(env['BENCH_RESULT']).read_text()
    task = json.loads(result_text)
    module: dict[str, Any] = {}
    if env.get('BENCH_MODULE_RUNS') and Path(env['BENCH_MODULE_RUNS']).is_file():
        runs = [json.loads(line) for line in Path(env['BENCH_MODULE_RUNS']).read_text().splitlines()]
        runs = [r for r in runs if any('AnsiballZ_' in a for a in r['argv'])] or runs
        if len(runs) == 1:
            module = dict(
                module_seconds=round(runs[0]['seconds'], 3),
                module_cpu=round(runs[0]['user'] + runs[0]['system'], 3),
                peak_rss_mb=round(runs[0]['maxrss_kib'] * 1024 / 1e6, 1),
            )
    pages = listing_ms(lines['glance'])
    return dict(
        seconds=seconds,
        task=task,
        result_bytes=len(result_text.encode()),
        glance_pages=len(pages),
        glance_pages_seconds=round(sum(pages) / 1000, 3),
        **module,
        glance=len(lines['glance']),
        keystone=len(lines['keystone']),
        glance_kinds=kinds(lines['glance']),
        keystone_kinds=kinds(lines['keystone']),
    )


def ensure_peer_venv() -> str:
    python = PEER_VENV / 'bin' / 'python'
    if not (PEER_VENV / 'bin' / 'ansible-playbook').is_file():
        log(f'making {PEER_VENV} ({", ".join(PEER_PACKAGES)})')
        subprocess.run([sys.executable, '-m', 'venv', str(PEER_VENV)], check=True)
        subprocess.run([str(python), '-m', 'pip', 'install', '-q', *PEER_PACKAGES], check=True)
    return str(PEER_VENV / 'bin')


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--images', type=int, default=None, help='catalog size (default 1000; 10000 with --scale)')
    parser.add_argument('--series', type=int, default=20, help='series holding half of the images (default 20)')
    parser.add_argument(
        '--peer-sample',
        type=int,
        default=None,
        help='images the peer loops over, extrapolated to --images (default 100; 0 skips the peer; 0 with --scale)',
    )
    parser.add_argument(
        '--shared',
        type=int,
        default=0,
        help='single images shared (visibility shared, members: the --share-with project); default 0',
    )
    parser.add_argument('--share-with', default='beta', help='member project of the shared images (default beta)')
    parser.add_argument('--admin-cloud', default='devcloud-admin', help="to look up --share-with's id")
    parser.add_argument(
        '--rounds',
        type=int,
        default=None,
        help='no-op runs of ours, each in check mode and applied (default 2; 3 with --scale)',
    )
    parser.add_argument(
        '--scale',
        action='store_true',
        help="the scale goals: wall <= 1.3 x Glance's page-serving sum, requests, peak RSS, result size",
    )
    parser.add_argument(
        '--prefix', help='reuse the images a --keep run seeded under this prefix (seeds them when none exist)'
    )
    parser.add_argument(
        '--profile', type=Path, help='run the module under cProfile, one .prof per run in this directory'
    )
    parser.add_argument('--cloud', default='devcloud-alpha')
    parser.add_argument(
        '--collection',
        type=Path,
        default=REPO,
        help='the collection checkout to measure (default: this one), e.g. a copy with a fix',
    )
    parser.add_argument('--workdir', type=Path, default=Path(tempfile.gettempdir()) / 'imagegov-catalog-bench')
    parser.add_argument(
        '--json', type=Path, help='default benchmarks/results/catalog_noop.json (catalog_scale.json with --scale)'
    )
    parser.add_argument('--keep', action='store_true', help='leave the seeded images in the cloud')
    parser.add_argument('--check', action='store_true', help='exit 1 when a goal is missed')
    args = parser.parse_args(argv)
    if args.images is None:
        args.images = 10000 if args.scale else 1000
    if args.peer_sample is None:
        args.peer_sample = 0 if args.scale else 100
    if args.rounds is None:
        args.rounds = 3 if args.scale else 2
    if args.json is None:
        args.json = RESULTS / ('catalog_scale.json' if args.scale else 'catalog_noop.json')
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    clouds_yaml = clouds_yaml_path()
    os.environ['OS_CLIENT_CONFIG_FILE'] = str(clouds_yaml)
    state = Path(os.environ.get('IMAGEGOV_DEVCLOUD_DIR', REPO / '.devcloud'))
    requests_log = RequestLog(state / 'state' / 'logs')
    prefix = args.prefix or f'bench-noop-{uuid.uuid4().hex[:6]}'
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.prefix:  # the same files as the run that seeded them: the module's digest cache still holds
        workdir = args.workdir / prefix
        shutil.rmtree(workdir / 'collections', ignore_errors=True)
        shutil.rmtree(workdir / 'callback_plugins', ignore_errors=True)
        workdir.mkdir(exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix=f'{prefix}-', dir=args.workdir))
    collections = workdir / 'collections'
    (collections / 'ansible_collections' / 'imagegov').mkdir(parents=True)
    (collections / 'ansible_collections' / 'imagegov' / 'openstack').symlink_to(args.collection.resolve())
    (workdir / 'ours.yml').write_text(OURS_PLAYBOOK)
    (workdir / 'peer.yml').write_text(PEER_PLAYBOOK)
    (workdir / 'floor.yml').write_text(FLOOR_PLAYBOOK)
    (workdir / 'callback_plugins').mkdir()
    (workdir / 'callback_plugins' / 'bench_result.py').write_text(CALLBACK)
    cloud = Cloud(args.cloud)
    result: dict[str, Any] = dict(
        images=args.images,
        cloud=args.cloud,
        prefix=prefix,
        started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        machine=dict(
            cpus=os.cpu_count(), python=platform.python_version(), system=f'{platform.system()} {platform.release()}'
        ),
        code=code_version(),
        collection=str(args.collection),
        load_before=os.getloadavg(),
    )
    try:
        member = None
        if args.shared:
            import openstack

            admin = openstack.connect(cloud=args.admin_cloud)
            member = admin.identity.find_project(args.share_with, ignore_missing=False).id
        result.update(shared=args.shared, share_with=member)
        images = make_catalog(workdir, prefix, args.images, args.series, args.shared, member)
        existing = cloud.listing(prefix) if args.prefix else []
        if existing:
            if len(existing) != len(images):
                raise RuntimeError(
                    f'{len(existing)} images named {prefix}* in the cloud, the catalog has {len(images)}: '
                    'give the --images, --series and --shared of the run that seeded them'
                )
            log(f'reusing the {len(existing)} images seeded under {prefix}')
            result['seed_seconds'] = None
        else:
            log(f'seeding {len(images)} images through Glance (4 threads)')
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                list(pool.map(cloud.seed, images))
            result['seed_seconds'] = round(time.perf_counter() - start, 2)
            log(f'seeded in {result["seed_seconds"]} s')
        if args.keep:
            log(f'--keep: reuse these images with --prefix {prefix}')

        venv_bin = str(Path(sys.executable).parent)
        env = ansible_env(workdir, clouds_yaml, venv_bin, str(collections))
        module_wrapper(workdir, env, args.profile)
        result.update(scale=args.scale, profile=str(args.profile) if args.profile else None)
        ours = []
        for number in range(args.rounds):
            for check in (True, False):
                run = run_playbook(
                    env,
                    venv_bin,
                    workdir / 'ours.yml',
                    dict(
                        bench_cloud=args.cloud,
                        bench_catalog=str(workdir / 'catalog.yml'),
                        bench_name=prefix,
                        **({'bench_report_plan': str(workdir / 'plan.json')} if args.scale else {}),
                    ),
                    check,
                    requests_log,
                    workdir,
                )
                module = run.pop('task')
                plan_file = workdir / 'plan.json'
                if args.scale and plan_file.is_file():
                    run['report_plan_bytes'] = plan_file.stat().st_size
                run.update(
                    round=number + 1,
                    check_mode=check,
                    changed=module['changed'],
                    summary=module['summary'],
                    module_requests=module.get('requests'),
                    result_items=len(module.get('plan') or module.get('items') or []),
                )
                ours.append(run)
                log(
                    f'ours, {"check" if check else "apply"}: {run["seconds"]:.2f} s '
                    f'(module {run.get("module_seconds", "?")} s, {run.get("peak_rss_mb", "?")} MB; '
                    f'Glance pages {run["glance_pages"]} in {run["glance_pages_seconds"]:.2f} s), '
                    f'summary {module["summary"]}, result {run["result_bytes"]} bytes, '
                    f'requests: module {module.get("requests")}, Glance {run["glance"]}, Keystone {run["keystone"]}'
                )
                if module['changed'] or not noop_only(module['summary'], len(images)):
                    raise RuntimeError(f'the no-op run was not a no-op: {str(module)[:3000]}')
            if args.scale:
                floor = run_playbook(
                    env, venv_bin, workdir / 'floor.yml', dict(bench_cloud=args.cloud), False, requests_log, workdir
                )
                floor.pop('task')
                result.setdefault('floor', []).append(floor)
                log(f'floor (Ansible, module start-up, auth, one request): {floor["seconds"]:.2f} s')
        result['ours'] = ours

        peer = None
        if args.peer_sample:
            sample = images[: min(args.peer_sample, len(images))]
            peer_bin = ensure_peer_venv()
            listed = workdir / 'peer-images.json'
            listed.write_text(
                json.dumps([{k: v for k, v in i.items() if k not in ('data', 'members')} for i in sample])
            )
            peer_env = ansible_env(workdir, clouds_yaml, peer_bin, str(workdir / 'no-collections'))
            peer_env.pop('ANSIBLE_COLLECTIONS_PATH')  # the ansible package's own collections
            peer_env.pop('ANSIBLE_COLLECTIONS_SCAN_SYS_PATH')
            log(f'peer: openstack.cloud.image over {len(sample)} images')
            peer = run_playbook(
                peer_env,
                peer_bin,
                workdir / 'peer.yml',
                dict(bench_cloud=args.cloud, bench_images=str(listed)),
                False,
                requests_log,
                workdir,
            )
            changed = [r['item']['name'] for r in peer.pop('task').get('results', []) if r.get('changed')]
            scale = len(images) / len(sample)
            peer.update(
                sample=len(sample),
                changed_items=len(changed),
                changed_sample=changed[:5],
                extrapolated=len(sample) < len(images),
                scale=scale,
                seconds_full=peer['seconds'] * scale,
                requests_full=round((peer['glance'] + peer['keystone']) * scale),
            )
            log(
                f'peer: {peer["seconds"]:.1f} s, Glance {peer["glance"]}, Keystone {peer["keystone"]}, '
                f'changed {len(changed)} of {len(sample)}'
            )
            result['peer'] = peer
    finally:
        if not args.keep:
            log('deleting the seeded images (8 threads)')
            problems = cloud.cleanup(prefix)
            result['cleanup_problems'] = problems
            for problem in problems:
                log(f'clean-up: {problem}')
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    return report(result, args)


def noop_only(summary: Any, count: int) -> bool:
    """The summary says every image is noop (the counts, whatever else the summary holds)."""
    if not isinstance(summary, dict):
        return False
    counts = summary.get('counts', summary) if isinstance(summary.get('counts'), dict) else summary
    counts = {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool) and v}
    return counts == {'noop': count}


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def report_scale(result: dict[str, Any], args: argparse.Namespace) -> int:
    """The scale goals, per no-op run; PASS/MISS by the median run (the worst is shown too)."""
    images = result['images']
    ours = result['ours']
    goal_requests = math.ceil(images / 1000) + 10
    for run in ours:
        run['glance_ratio'] = (
            round(run['seconds'] / run['glance_pages_seconds'], 2) if run['glance_pages_seconds'] else None
        )
    ratios = [r['glance_ratio'] for r in ours if r['glance_ratio'] is not None]
    requests = [r['glance'] + r['keystone'] for r in ours]
    rss = [r.get('peak_rss_mb') or 0.0 for r in ours]
    sizes = [r['result_bytes'] for r in ours]
    figures = dict(
        wall_seconds_median=round(median([r['seconds'] for r in ours]), 2),
        module_seconds_median=round(median([r.get('module_seconds') or 0.0 for r in ours]), 2),
        glance_pages_seconds_median=round(median([r['glance_pages_seconds'] for r in ours]), 2),
        glance_ratio_median=round(median(ratios), 2) if ratios else None,
        glance_ratio_worst=max(ratios) if ratios else None,
        requests_max=max(requests),
        peak_rss_mb_max=max(rss),
        result_bytes_max=max(sizes),
    )
    goals = dict(
        wall=bool(ratios) and median(ratios) <= GOAL_GLANCE_FACTOR,
        requests=max(requests) <= goal_requests,
        rss=max(rss) <= GOAL_RSS_MB,
        result=max(sizes) <= GOAL_RESULT_BYTES,
    )
    floors = [run['seconds'] for run in result.get('floor') or []]
    if floors:
        figures['floor_seconds_median'] = round(median(floors), 2)
        pages = figures['glance_pages_seconds_median']
        # What the goal leaves for reading, validating, planning and reporting the catalog.
        figures['goal_budget_seconds'] = round(GOAL_GLANCE_FACTOR * pages - pages - figures['floor_seconds_median'], 2)
        figures['floor_share'] = round(figures['floor_seconds_median'] / pages, 2) if pages else None
    if args.profile:
        goals.pop('wall')  # cProfile slows the module down: no timing goal
    rows = [
        ('images in the catalog', f'{images} ({result.get("shared", 0)} shared)', ''),
        (
            'seeding (Glance API, 4 threads)',
            'reused' if result['seed_seconds'] is None else f'{result["seed_seconds"]:.1f} s',
            '',
        ),
    ]
    for run in ours:
        rows.append(
            (
                f'round {run["round"]}, {"check mode" if run["check_mode"] else "apply"}',
                f'wall {run["seconds"]:.2f} s (module {run.get("module_seconds", 0):.2f} s, '
                f'CPU {run.get("module_cpu", 0):.2f} s); Glance {run["glance_pages"]} pages '
                f'{run["glance_pages_seconds"]:.2f} s; x{run["glance_ratio"]}',
                f'{run["glance"] + run["keystone"]} req (G {run["glance"]}, K {run["keystone"]}), '
                f'{run.get("peak_rss_mb", 0):.0f} MB, result {run["result_bytes"]} B',
            )
        )

    def verdict(ok: bool | None) -> str:
        return 'n/a (profiled)' if ok is None else ('PASS' if ok else 'MISS')

    rows += [
        (
            "wall / Glance's page-serving sum",
            f'median x{figures["glance_ratio_median"]} (worst x{figures["glance_ratio_worst"]}; '
            f'wall median {figures["wall_seconds_median"]:.2f} s, '
            f'pages median {figures["glance_pages_seconds_median"]:.2f} s)',
            f'goal <= x{GOAL_GLANCE_FACTOR}: {verdict(goals.get("wall"))}',
        ),
        *(
            [
                (
                    'fixed cost of any module run',
                    f"{figures['floor_seconds_median']:.2f} s median (ansible-playbook, the module's start-up, "
                    f"auth, one request) = x{figures['floor_share']:.2f} of Glance's page sum",
                    f'the goal leaves {figures["goal_budget_seconds"]:.2f} s for the catalog itself',
                )
            ]
            if 'floor_seconds_median' in figures
            else []
        ),
        (
            'requests per run (most)',
            f'{figures["requests_max"]}',
            f'goal <= {goal_requests}: {verdict(goals["requests"])}',
        ),
        (
            'module peak RSS (largest)',
            f'{figures["peak_rss_mb_max"]:.1f} MB',
            f'goal <= {GOAL_RSS_MB:.0f} MB: {verdict(goals["rss"])}',
        ),
        (
            'task result (largest, JSON)',
            f'{figures["result_bytes_max"]} bytes, {max(r["result_items"] for r in ours)} plan items '
            f'(report_plan file: {max(r.get("report_plan_bytes", 0) for r in ours)} bytes)',
            f'goal <= {GOAL_RESULT_BYTES} bytes: {verdict(goals["result"])}',
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for label, value, note in rows:
        print(f'{label:<{width}}  {value}  {note}'.rstrip())
    print(f"ours' Glance requests (last apply): {ours[-1]['glance_kinds']}")
    result.update(goals=goals, figures=figures, load_after=os.getloadavg())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, sort_keys=True) + '\n')
    print(f'\nwritten: {args.json}')
    return 1 if args.check and not all(goals.values()) else 0


def report(result: dict[str, Any], args: argparse.Namespace) -> int:
    if args.scale:
        return report_scale(result, args)
    images = result['images']
    ours = result['ours']
    worst = max(ours, key=lambda r: r['seconds'])
    most = max(r['glance'] + r['keystone'] for r in ours)
    goal_requests = math.ceil(images / 1000) + 10
    goals = dict(seconds=worst['seconds'] <= GOAL_SECONDS, requests=most <= goal_requests)
    rows = [
        ('images in the catalog', f'{images} ({result.get("shared", 0)} shared)', ''),
        ('seeding (Glance API, 4 threads)', f'{result["seed_seconds"]:.1f} s', ''),
    ]
    for run in ours:
        rows.append(
            (
                f'ours, round {run["round"]}, {"check mode" if run["check_mode"] else "apply"}',
                f'{run["seconds"]:.2f} s, {run["glance"] + run["keystone"]} requests '
                f'(Glance {run["glance"]}, Keystone {run["keystone"]}; module says {run["module_requests"]})',
                f'summary {run["summary"]}',
            )
        )
    rows.append(
        (
            'ours, slowest run',
            f'{worst["seconds"]:.2f} s',
            f'goal <= {GOAL_SECONDS:.0f} s: ' + ('PASS' if goals['seconds'] else 'MISS'),
        )
    )
    rows.append(
        ('ours, most requests', f'{most}', f'goal <= {goal_requests:g}: ' + ('PASS' if goals['requests'] else 'MISS'))
    )
    peer = result.get('peer')
    if peer:
        how = (
            f'measured over {peer["sample"]} images, extrapolated x{peer["scale"]:g}'
            if peer['extrapolated']
            else 'measured'
        )
        rows.append(
            (
                f'peer openstack.cloud.image, {peer["sample"]} images',
                f'{peer["seconds"]:.1f} s, '
                f'{peer["glance"] + peer["keystone"]} requests (Glance {peer["glance"]}, Keystone {peer["keystone"]})',
                f'changed {peer["changed_items"]} of {peer["sample"]}',
            )
        )
        rows.append(
            (f'peer for {images} images', f'{peer["seconds_full"]:.0f} s, {peer["requests_full"]} requests', how)
        )
        ratio = peer['seconds_full'] / worst['seconds']
        goals['ratio'] = ratio >= GOAL_RATIO
        result['ratio'] = round(ratio, 1)
        result['requests_ratio'] = round(peer['requests_full'] / most, 1)
        rows.append(
            (
                'ratio peer / ours (wall, slowest of ours)',
                f'{ratio:.0f}x',
                f'goal >= {GOAL_RATIO:.0f}x: ' + ('PASS' if goals['ratio'] else 'MISS'),
            )
        )
        rows.append(('ratio peer / ours (requests)', f'{result["requests_ratio"]:.0f}x', ''))
    width = max(len(r[0]) for r in rows)
    print()
    for label, value, note in rows:
        print(f'{label:<{width}}  {value}  {note}'.rstrip())
    if peer:
        print(f"\npeer's Glance requests: {peer['glance_kinds']}")
    print(f"ours' Glance requests (last apply): {ours[-1]['glance_kinds']}")
    result['goals'] = goals
    result['load_after'] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, sort_keys=True) + '\n')
    print(f'\nwritten: {args.json}')
    return 1 if args.check and not all(goals.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
