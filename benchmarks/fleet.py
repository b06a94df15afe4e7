"""A fleet no-op: one catalog on four regions at once against the same catalog on one region.

One run, against a running devcloud (``./dev cloud start``); it starts RegionTwo, RegionThree
and RegionFour (``devcloud region start``, each its own Glance) when they do not run, and
stops them at the end if it started them:

1. writes --images (default 1,000) small files and a catalog of them (catalog_noop.py's
   catalog: half in series, half single images, properties and tags);
2. seeds every region's Glance with them (4 threads per region), as the catalog would;
3. one region: ``ansible-playbook imagegov.openstack.reconcile`` on the clouds inventory
   limited to RegionOne (one host), planning the catalog (a no-op) - timed as a whole
   process, Glance and Keystone requests counted from their logs;
4. the fleet: the same playbook on the four regions in one run (``-f 4``), timed and
   counted the same way; each target must report nothing to do;
5. prints the goals - fleet wall <= 2.5 x one region's, fleet Glance requests = 4 x one
   region's - and writes benchmarks/results/fleet.json.

Steps 3 and 4 alternate --rounds times (default 2); the best of each is compared. The seeded
images are deleted at the end unless --keep.

    .venv/bin/python benchmarks/fleet.py [--images 1000] [--rounds 2] [--keep] [--check]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from bench_common import REPO, clouds_yaml_path, code_version, log
from catalog_noop import Cloud, RequestLog, make_catalog

RESULTS = REPO / 'benchmarks' / 'results'
DEVCLOUD = REPO / 'tests' / 'devcloud' / 'devcloud'
REGIONS = ('RegionOne', 'RegionTwo', 'RegionThree', 'RegionFour')
GOAL_RATIO = 2.5


def fleet_clouds_yaml(source: Path, target: Path, cloud: str) -> None:
    """The cloud's entry listing the four regions, as an operator's clouds.yaml would."""
    clouds = yaml.safe_load(source.read_text())
    entry = clouds['clouds'][cloud]
    entry.pop('region_name', None)
    entry['regions'] = list(REGIONS)
    target.write_text(yaml.safe_dump({'clouds': {cloud: entry}}))
    target.chmod(0o600)


def run_fleet(
    env: dict[str, str], inventory: Path, catalog: Path, name: str, logs: list[RequestLog], cwd: Path, limit: str
):
    marks = [log_.mark() for log_ in logs]
    command = [
        str(Path(sys.executable).parent / 'ansible-playbook'),
        '-i',
        str(inventory),
        'imagegov.openstack.reconcile',
        '-f',
        '4',
        '--limit',
        f'{limit},localhost',
        '-e',
        json.dumps({'catalog': str(catalog), 'catalog_set_name': name, 'reports_dir': str(cwd / 'reports')}),
    ]
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f'the fleet run failed (rc {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}'
        )
    time.sleep(0.3)  # uwsgi writes its request line after the response
    glance = [len(log_.since(mark)['glance']) for log_, mark in zip(logs, marks, strict=True)]
    keystone = len(logs[0].since(marks[0])['keystone'])
    report = json.loads((cwd / 'reports' / 'fleet.json').read_text())
    return dict(seconds=seconds, glance=glance, keystone=keystone, targets=report['targets'], totals=report['totals'])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--images', type=int, default=1000, help='catalog size per region (default 1000)')
    parser.add_argument('--series', type=int, default=20, help='series holding half of the images (default 20)')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--cloud', default='devcloud-alpha')
    parser.add_argument('--workdir', type=Path, default=Path(tempfile.gettempdir()) / 'imagegov-fleet-bench')
    parser.add_argument('--json', type=Path, default=RESULTS / 'fleet.json')
    parser.add_argument('--keep', action='store_true', help='leave the seeded images in the regions')
    parser.add_argument('--check', action='store_true', help='exit 1 when a goal is missed')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    devcloud_clouds = clouds_yaml_path()
    state = Path(os.environ.get('IMAGEGOV_DEVCLOUD_DIR', REPO / '.devcloud'))
    status = subprocess.run([str(DEVCLOUD), 'region', 'status', *REGIONS[1:]], capture_output=True, check=False)
    started = status.returncode != 0
    if started:
        log(f'starting {", ".join(REGIONS[1:])}')
        subprocess.run([str(DEVCLOUD), 'region', 'start', *REGIONS[1:]], check=True, capture_output=True)
    prefix = f'bench-fleet-{uuid.uuid4().hex[:6]}'
    args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f'{prefix}-', dir=args.workdir))
    clouds_yaml = workdir / 'clouds.yaml'
    fleet_clouds_yaml(devcloud_clouds, clouds_yaml, args.cloud)
    os.environ['OS_CLIENT_CONFIG_FILE'] = str(clouds_yaml)
    collections = workdir / 'collections'
    (collections / 'ansible_collections' / 'imagegov').mkdir(parents=True)
    (collections / 'ansible_collections' / 'imagegov' / 'openstack').symlink_to(REPO)
    inventory = workdir / 'fleet.clouds.yml'
    inventory.write_text(yaml.safe_dump({'plugin': 'imagegov.openstack.clouds', 'clouds': [args.cloud]}))
    logs = [RequestLog(state / 'state' / 'logs')]
    for region in REGIONS[1:]:
        region_log = RequestLog(state / 'state' / 'logs')
        region_log.files['glance'] = state / 'state' / 'logs' / f'glance-{region}.log'
        logs.append(region_log)
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_') and k != 'IMAGEGOV_BASE_POLICY'}
    env.update(
        PATH=f'{Path(sys.executable).parent}:{os.environ.get("PATH", "")}',
        OS_CLIENT_CONFIG_FILE=str(clouds_yaml),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false',
        ANSIBLE_INVENTORY_ENABLED='imagegov.openstack.clouds',
        ANSIBLE_DEPRECATION_WARNINGS='false',
        ANSIBLE_NOCOLOR='1',
        IMAGEGOV_POLICY=str(REPO / 'tests' / 'integration' / 'policies' / 'glance-parity.yml'),
    )
    result: dict[str, Any] = dict(
        images=args.images,
        regions=list(REGIONS),
        prefix=prefix,
        started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        machine=dict(cpus=os.cpu_count(), python=platform.python_version()),
        code=code_version(),
        load_before=os.getloadavg(),
    )
    clouds = {region: Cloud(args.cloud, region) for region in REGIONS}
    try:
        images = make_catalog(workdir, prefix, args.images, args.series)
        start = time.perf_counter()
        for region, cloud in clouds.items():
            log(f'seeding {len(images)} images into {region} (4 threads)')
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                list(pool.map(cloud.seed, images))
        result['seed_seconds'] = round(time.perf_counter() - start, 1)
        one, fleet = [], []
        for number in range(args.rounds):
            for runs, limit in ((one, f'{args.cloud}.RegionOne'), (fleet, 'imagegov_fleet')):
                run = run_fleet(env, inventory, workdir / 'catalog.yml', prefix, logs, workdir, limit)
                noop = all(t['counts']['unchanged'] == len(images) and t['status'] == 'ok' for t in run['targets'])
                if not noop:
                    raise RuntimeError(f'not a no-op: {[(t["target"], t["summary"]) for t in run["targets"]]}')
                run.update(round=number + 1, hosts=len(run['targets']))
                runs.append(run)
                log(
                    f'{run["hosts"]} target(s): {run["seconds"]:.2f} s, Glance requests {run["glance"]}, '
                    f'Keystone {run["keystone"]}'
                )
        best_one, best_fleet = min(one, key=lambda r: r['seconds']), min(fleet, key=lambda r: r['seconds'])
        ratio = best_fleet['seconds'] / best_one['seconds']
        goals = dict(
            time=ratio <= GOAL_RATIO,
            requests=sorted(best_fleet['glance']) == [best_one['glance'][0]] * len(REGIONS),
        )
        result.update(one=one, fleet=fleet, ratio=round(ratio, 2), goals=goals)
        print()
        print(f'images per region              {len(images)}')
        print(f'seeding ({len(REGIONS)} regions)             {result["seed_seconds"]} s')
        print(f'one region (best of {args.rounds})        {best_one["seconds"]:.2f} s, Glance {best_one["glance"][0]}')
        print(
            f'four regions (best of {args.rounds})      {best_fleet["seconds"]:.2f} s, Glance {best_fleet["glance"]} '
            f'(Keystone {best_fleet["keystone"]})'
        )
        print(
            f'ratio four / one               {ratio:.2f}  goal <= {GOAL_RATIO}: '
            + ('PASS' if goals['time'] else 'MISS')
        )
        print(
            f'requests per region            {best_fleet["glance"]} vs {best_one["glance"][0]}: '
            + ('PASS' if goals['requests'] else 'MISS')
        )
    finally:
        if not args.keep:
            log('deleting the seeded images')
            for cloud in clouds.values():
                for problem in cloud.cleanup(prefix):
                    log(f'clean-up: {problem}')
        if started:
            subprocess.run([str(DEVCLOUD), 'region', 'stop', *REGIONS[1:]], capture_output=True, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    result['load_after'] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + '\n')
    print(f'\nwritten: {args.json}')
    return 1 if args.check and not all(result['goals'].values()) else 0


if __name__ == '__main__':
    sys.exit(main())
