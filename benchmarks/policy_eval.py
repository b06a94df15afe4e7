"""Policy engine throughput: 10,000 varied requests against the default policy, one process.

Prints wall time and requests/s for the default policy, and the ratio against two
baselines measured in the same run: deep-copying the requests (the cost of merely
touching every document) and a policy of one trivial rule (the engine's fixed cost
per request). Goal: the default policy evaluates 10,000 requests in <= 1 s.

    .venv/bin/python benchmarks/policy_eval.py [--requests N] [--repeat R] [--check]

--check exits 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GIB = 1024**3
GOAL_SECONDS = 1.0
GOAL_REQUESTS = 10000


def import_engine() -> Any:
    try:
        from ansible_collections.imagegov.openstack.plugins.module_utils import policy
    except ImportError:
        # Not installed as a collection: the engine is a plain package with relative imports.
        sys.path.insert(0, str(REPO / 'plugins' / 'module_utils'))
        import policy  # type: ignore[no-redef]
    return policy


ACTIONS = (
    ['create'] * 30
    + ['upload'] * 25
    + ['update'] * 15
    + ['publish'] * 10
    + ['share'] * 5
    + ['delete'] * 10
    + ['deactivate'] * 5
)
DISK_FORMATS = ['qcow2'] * 6 + ['raw'] * 3 + ['iso', 'vmdk', 'vhd']
CONTAINERS = ['bare'] * 8 + ['ova', 'ami', 'docker']
VISIBILITIES = ['private'] * 5 + ['shared'] * 2 + ['public', 'community']
SAFETY = [[]] * 18 + [['backing_file: Image has a backing file'], [{'check': 'data_file', 'message': 'data_file set'}]]


def make_requests(count: int, seed: int = 20250615) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    requests = []
    for index in range(count):
        action = rng.choice(ACTIONS)
        image_id = f'img-{rng.randrange(count // 4)}'
        disk_format = rng.choice(DISK_FORMATS)
        image = {
            'id': image_id,
            'name': f'image-{index}',
            'disk_format': disk_format,
            'container_format': rng.choice(CONTAINERS),
            'visibility': rng.choice(VISIBILITIES),
            'min_ram': rng.choice([0, 512, 2048]),
            'tags': ['bench'],
            'size': rng.randrange(1, 40) * GIB,
        }
        if rng.random() < 0.5:
            image.update(os_distro='ubuntu', architecture='x86_64')
        current = None if action == 'create' else dict(image, visibility=rng.choice(VISIBILITIES))
        request: dict[str, Any] = {
            'action': action,
            'actor': {
                'user': f'user-{index % 50}',
                'project': f'project-{index % 20}',
                'roles': ['admin'] if index % 10 == 0 else ['member', 'reader'],
            },
            'image': image if action != 'delete' else {},
            'current': current,
        }
        if action in ('upload', 'create') and rng.random() < 0.7:
            detected = disk_format if rng.random() < 0.9 else rng.choice(['raw', 'qcow2', 'gpt'])
            request['content'] = {
                'detected_format': detected,
                'size': rng.randrange(1, 30) * GIB,
                'virtual_size': rng.randrange(1, 40) * GIB,
                'safety_failures': rng.choice(SAFETY),
            }
        if action == 'delete' and rng.random() < 0.5:
            request['usage'] = {
                'servers': [{'id': f's-{index}', 'name': 'vm'}] if rng.random() < 0.3 else [],
                'images': [],
                'volumes': [],
                'not_checked': [],
            }
        requests.append(request)
    return requests


def usage_provider(image: dict[str, Any]) -> dict[str, Any]:
    busy = int(str(image.get('id')).rpartition('-')[2] or 0) % 3 == 0  # deterministic, unlike hash()
    return {'servers': [{'id': 's', 'name': 'vm'}] if busy else [], 'images': [], 'volumes': [], 'not_checked': []}


def best_of(repeat: int, run: Callable[[], Any]) -> float:
    best = float('inf')
    for _round in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=GOAL_REQUESTS)
    parser.add_argument('--repeat', type=int, default=3, help='best of R runs (default 3)')
    parser.add_argument('--check', action='store_true', help='exit 1 if the goal is missed')
    args = parser.parse_args()

    engine = import_engine()
    default_policy = engine.load_policy()
    trivial_policy = engine.load_policy_text(
        'version: 1\nrules:\n  - {id: has-action, type: expression, params: {assert: action}, '
        'actions: [create, update, upload, publish, share, delete, deactivate]}\n',
        source='trivial',
    )
    requests = make_requests(args.requests)

    copy_time = best_of(args.repeat, lambda: copy.deepcopy(requests))
    trivial_time = best_of(args.repeat, lambda: engine.evaluate_batch(trivial_policy, requests))
    default_time = best_of(
        args.repeat, lambda: engine.evaluate_batch(default_policy, requests, usage_provider=usage_provider)
    )
    decisions = engine.evaluate_batch(default_policy, requests, usage_provider=usage_provider)
    refused = sum(1 for decision in decisions if not decision.allowed)
    violations = sum(len(decision.violations) for decision in decisions)

    count = len(requests)
    print(
        f'policy engine benchmark: {count} requests, default policy ({len(default_policy.rules)} rules), '
        f'best of {args.repeat}'
    )
    print(f'  {"baseline: deepcopy requests":<28} {copy_time:8.3f} s  {count / copy_time:10.0f} req/s')
    print(f'  {"baseline: one trivial rule":<28} {trivial_time:8.3f} s  {count / trivial_time:10.0f} req/s')
    print(f'  {"default policy":<28} {default_time:8.3f} s  {count / default_time:10.0f} req/s')
    print(f'  ratio default / deepcopy:     {default_time / copy_time:.2f}x')
    print(f'  ratio default / trivial rule: {default_time / trivial_time:.2f}x')
    print(f'  verdicts: {refused} refused, {count - refused} allowed, {violations} violations')
    scaled = default_time * GOAL_REQUESTS / count
    met = scaled <= GOAL_SECONDS
    print(f'  goal: {GOAL_REQUESTS} requests in <= {GOAL_SECONDS:.1f} s: {"met" if met else "MISSED"} ({scaled:.3f} s)')
    return 1 if args.check and not met else 0


if __name__ == '__main__':
    sys.exit(main())
