"""The devcloud's virt driver: Nova's fake driver, whose snapshot uploads real bytes.

nova-compute loads it as ``compute_driver = imagegov_devcloud.SnapshotFakeDriver``: Nova
imports drivers from ``nova.virt`` only, so lib/nova.sh copies this file to the venv's
``nova/virt/imagegov_devcloud.py`` whenever it starts nova-compute. Everything but
``snapshot()`` is ``fake.FakeDriverWithoutFakeNodes``: one stable node, servers that
boot in a second. Its snapshot goes the way libvirt's does: task state
image_pending_upload, then image_uploading, then ``nova.image.glance.API().update()``
with the data, so Nova's createImage yields an active image that Glance has hashed.

The data is a small qcow2 (64 MiB virtual, a few KiB of data) made once with qemu-img
and qemu-io in Nova's state_path. Server metadata ``devcloud_snapshot`` changes the
behaviour, for tests of failures: ``fail`` raises before the upload (Nova deletes the
image), ``sleep:N`` waits N seconds before the upload.
"""

from __future__ import annotations

import os
import time

from nova import exception
from nova.compute import task_states
from nova.conf import CONF
from nova.image import glance
from nova.virt import fake
from oslo_concurrency import lockutils, processutils
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

SNAPSHOT_FILE = 'imagegov-devcloud-snapshot.qcow2'
SNAPSHOT_VIRTUAL_SIZE = '64M'
# Data written into the qcow2: (byte pattern, offset, length).
SNAPSHOT_WRITES = ((0x5A, '0', '4k'), (0xA5, '1M', '4k'))
BEHAVIOUR_KEY = 'devcloud_snapshot'


def snapshot_file() -> str:
    """The qcow2 every snapshot uploads; made on first use."""
    path = os.path.join(CONF.state_path, SNAPSHOT_FILE)
    with lockutils.lock('imagegov-devcloud-snapshot-file'):
        if not os.path.exists(path):
            scratch = f'{path}.part'
            processutils.execute('qemu-img', 'create', '-q', '-f', 'qcow2', scratch, SNAPSHOT_VIRTUAL_SIZE)
            for pattern, offset, length in SNAPSHOT_WRITES:
                processutils.execute('qemu-io', '-f', 'qcow2', '-c', f'write -P {pattern} {offset} {length}', scratch)
            os.replace(scratch, path)
    return path


class SnapshotFakeDriver(fake.FakeDriverWithoutFakeNodes):
    """FakeDriverWithoutFakeNodes with a snapshot that uploads a real qcow2."""

    def snapshot(self, context, instance, image_id, update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        behaviour = (instance.metadata or {}).get(BEHAVIOUR_KEY, '')
        image_api = glance.API()
        snapshot = image_api.get(context, image_id)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        if behaviour == 'fail':
            raise exception.NovaException(
                f'devcloud: snapshot of {instance.uuid} failed on request ({BEHAVIOUR_KEY}=fail)'
            )
        if behaviour.startswith('sleep:'):
            time.sleep(float(behaviour.partition(':')[2]))
        path = snapshot_file()
        # As libvirt's _create_snapshot_metadata: Nova's own properties plus the format.
        metadata = {
            'status': 'active',
            'name': snapshot['name'],
            'disk_format': 'qcow2',
            'container_format': 'bare',
            'properties': {
                'image_location': 'snapshot',
                'image_state': 'available',
                'owner_id': instance.project_id,
            },
        }
        update_task_state(task_state=task_states.IMAGE_UPLOADING, expected_state=task_states.IMAGE_PENDING_UPLOAD)
        with open(path, 'rb') as data:
            image_api.update(context, image_id, metadata, data, purge_props=False)
        LOG.info(
            'devcloud: uploaded %s (%d bytes) as snapshot %s of %s',
            path,
            os.path.getsize(path),
            image_id,
            instance.uuid,
        )
