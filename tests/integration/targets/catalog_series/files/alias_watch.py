"""Resolve a name the way `openstack image show NAME` does (openstacksdk's find_image), as
often as possible, until a stop file appears; write how often it resolved, was missing or
matched several images, the images it found, and the longest run of failed lookups."""

import json
import os
import sys
import time

import openstack
from openstack import exceptions

cloud, name, stop, out = sys.argv[1:5]
conn = openstack.connect(cloud=cloud)
seen = {'ok': 0, 'missing': 0, 'duplicate': 0, 'ids': []}
failing_since, longest = None, 0.0
while not os.path.exists(stop):
    try:
        image = conn.image.find_image(name, ignore_missing=True)
        outcome = 'ok' if image is not None else 'missing'
    except exceptions.DuplicateResource:
        outcome, image = 'duplicate', None
    seen[outcome] += 1
    now = time.monotonic()
    if outcome == 'ok':
        if not seen['ids'] or seen['ids'][-1] != image.id:
            seen['ids'].append(image.id)
        if failing_since is not None:
            longest, failing_since = max(longest, now - failing_since), None
    elif failing_since is None:
        failing_since = now
seen['longest_failure_s'] = round(longest, 3)
with open(out, 'w') as handle:
    json.dump(seen, handle)
