"""Volumes and volume-backed servers for the volumes target, through openstacksdk.

Usage: cloud_volumes.py CLOUD create NAME IMAGE          -> (IMAGE: id or name) prints the
                                                           volume id once available
       cloud_volumes.py CLOUD delete VOLUME_ID          -> waits until it is gone
       cloud_volumes.py CLOUD boot NAME IMAGE_ID        -> server from a new volume (image ->
                                                           volume, deleted with the server);
                                                           prints "server_id volume_id"
       cloud_volumes.py CLOUD unboot SERVER_ID          -> deletes the server, waits for it
                                                           and for its volume to go
       cloud_volumes.py CLOUD[,CLOUD...] cleanup PREFIX -> removes the servers and volumes
                                                           named PREFIX... of those clouds
"""

import sys
import time

import openstack


def wait(check, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    sys.exit(f'timed out waiting for {what}')


def volume_status(conn, volume_id):
    volume = conn.block_storage.find_volume(volume_id)
    if volume is not None and volume.status == 'error':
        sys.exit(f'volume {volume_id} went to error')
    return None if volume is None else volume.status


def unboot(conn, server):
    volumes = [a.volume_id for a in conn.compute.volume_attachments(server)]
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=120)
    for volume_id in volumes:
        wait(lambda v=volume_id: volume_status(conn, v) is None, f'volume {volume_id} to go')


def cleanup(conn, prefix):
    for server in conn.compute.servers():
        if (server.name or '').startswith(prefix):
            unboot(conn, server)
    gone = []
    for volume in conn.block_storage.volumes():
        if (volume.name or '').startswith(prefix):
            conn.block_storage.delete_volume(volume.id, ignore_missing=True)
            gone.append(volume.id)
    for volume_id in gone:
        wait(lambda v=volume_id: volume_status(conn, v) is None, f'volume {volume_id} to go')


def main(cloud, action, *args):
    if action == 'cleanup':
        for name in cloud.split(','):
            cleanup(openstack.connect(cloud=name), args[0])
        return
    conn = openstack.connect(cloud=cloud)
    if action == 'create':
        name, image = args
        image_id = conn.image.find_image(image, ignore_missing=False).id
        volume = conn.block_storage.create_volume(name=name, size=1, image_id=image_id)
        wait(lambda: volume_status(conn, volume.id) == 'available', f'volume {volume.id}')
        print(volume.id)
    elif action == 'delete':
        (volume_id,) = args
        conn.block_storage.delete_volume(volume_id, ignore_missing=True)
        wait(lambda: volume_status(conn, volume_id) is None, f'volume {volume_id} to go')
    elif action == 'boot':
        name, image_id = args
        server = conn.compute.create_server(
            name=name,
            flavor_id='devcloud-tiny',
            networks='none',
            block_device_mapping=[
                {
                    'boot_index': 0,
                    'uuid': image_id,
                    'source_type': 'image',
                    'destination_type': 'volume',
                    'volume_size': 1,
                    'delete_on_termination': True,
                }
            ],
        )
        server = conn.compute.wait_for_server(server, wait=120)
        volumes = [a.volume_id for a in conn.compute.volume_attachments(server)]
        print(server.id, *volumes)
    elif action == 'unboot':
        (server_id,) = args
        server = conn.compute.find_server(server_id)
        if server is not None:
            unboot(conn, server)
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(*sys.argv[1:])
