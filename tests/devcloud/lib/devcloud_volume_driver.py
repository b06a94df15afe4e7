"""The devcloud's Cinder backend: the fake driver shipped in the cinder package, with
file-backed volumes so that data moves the way it does on a real backend.

`cinder.tests.fake_driver.FakeLoggingVolumeDriver` accepts every call and stores
nothing: a volume made from an image would hold no bytes, and `os-volume_upload_image`
(Glance image from a volume) would try to read an LVM device that does not exist. Here a
volume is a sparse raw file `<state_path>/volumes/volume-<id>` of the volume's size:

- create from an image: Cinder's own `image_utils.fetch_to_raw` downloads the image from
  Glance and converts it with qemu-img into the file;
- upload to an image: Cinder's own `volume_utils.upload_volume` converts the file with
  qemu-img to the image's disk format (qcow2: only the written clusters, so small) and
  uploads it through Cinder's Glance image service, so the image has real bytes and a hash;
- clone, snapshot, volume from snapshot: sparse copies; extend: the file grows.

Everything else (attach, export, connection info, stats) is the fake driver's.
Loaded by cinder-volume as `devcloud_volume_driver.DevcloudVolumeDriver` with this
directory on PYTHONPATH.
"""

import contextlib
import os
import subprocess

import cinder.privsep
from cinder.image import image_utils
from cinder.tests import fake_driver
from cinder.volume import volume_utils
from oslo_config import cfg
from oslo_log import log as logging

CONF = cfg.CONF
LOG = logging.getLogger(__name__)
GIB = 1024**3

# No sudo or rootwrap here: the privileged helpers Cinder calls on the image path (its
# format inspection of a downloaded image) run in this process, with the service's own
# rights over its own files, as Cinder's unit tests run them.
cinder.privsep.sys_admin_pctxt.set_client_mode(False)


class DevcloudVolumeDriver(fake_driver.FakeLoggingVolumeDriver):
    VERSION = '1.0.0'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.volumes_dir = os.path.join(CONF.state_path, 'volumes')

    def do_setup(self, context):
        os.makedirs(self.volumes_dir, exist_ok=True)

    def local_path(self, volume, vg=None):
        return os.path.join(self.volumes_dir, 'volume-' + volume['id'])

    def _snapshot_path(self, snapshot):
        return os.path.join(self.volumes_dir, 'snapshot-' + snapshot['id'])

    @staticmethod
    def _allocate(path, size_gb):
        with open(path, 'ab') as f:
            f.truncate(max(os.path.getsize(path), int(size_gb) * GIB))

    @staticmethod
    def _copy(src, dst, size_gb):
        if os.path.exists(src):
            # cp keeps the holes: a 1 GiB volume of a 1 MiB image stays 1 MiB on disk.
            subprocess.run(['cp', '--sparse=always', src, dst], check=True)
        DevcloudVolumeDriver._allocate(dst, size_gb)

    @staticmethod
    def _remove(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)

    def create_volume(self, volume):
        update = super().create_volume(volume)
        self._allocate(self.local_path(volume), volume['size'])
        return update

    def delete_volume(self, volume):
        self._remove(self.local_path(volume))

    def extend_volume(self, volume, new_size):
        self._allocate(self.local_path(volume), new_size)

    def create_cloned_volume(self, volume, src_vref):
        self._copy(self.local_path(src_vref), self.local_path(volume), volume['size'])

    def create_snapshot(self, snapshot):
        self._copy(self.local_path(snapshot.volume), self._snapshot_path(snapshot), snapshot['volume_size'])

    def delete_snapshot(self, snapshot):
        self._remove(self._snapshot_path(snapshot))

    def create_volume_from_snapshot(self, volume, snapshot):
        self._copy(self._snapshot_path(snapshot), self.local_path(volume), volume['size'])

    def copy_image_to_volume(self, context, volume, image_service, image_id, disable_sparse=False):
        path = self.local_path(volume)
        self._allocate(path, volume['size'])
        image_utils.fetch_to_raw(
            context,
            image_service,
            image_id,
            path,
            self.configuration.volume_dd_blocksize,
            size=volume['size'],
            run_as_root=False,
            disable_sparse=disable_sparse,
        )
        # qemu-img convert may leave the file at the image's virtual size.
        self._allocate(path, volume['size'])

    def copy_volume_to_image(self, context, volume, image_service, image_meta):
        volume_utils.upload_volume(
            context, image_service, image_meta, self.local_path(volume), volume, run_as_root=False
        )

    def clone_image(self, context, volume, image_location, image_meta, image_service):
        return None, False

    def copy_volume_data(self, context, src_vol, dest_vol, remote=None):
        self._copy(self.local_path(src_vol), self.local_path(dest_vol), dest_vol['size'])

    def remove_export(self, context, volume):
        pass
