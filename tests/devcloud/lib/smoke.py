"""Smoke test of a running devcloud through its clouds.yaml.

Checks what the collection's tests rely on: members create and list images,
the reader gets 403 on create, and (with --nova) a server booted from an image
is found by `GET /servers/detail?image=<id>&all_tenants=1` as admin, and a volume
made from an image is found by Cinder's image filter as admin and uploads back to
an image with bytes.
Cleans up everything it creates.

Usage: OS_CLIENT_CONFIG_FILE=... smoke.py [--nova]
"""

import json
import sys
import time

import openstack
from openstack import exceptions

CLOUDS = ('devcloud-admin', 'devcloud-alpha', 'devcloud-beta', 'devcloud-reader')


def step(msg, t0):
    print(f'ok  {msg:<60} {time.monotonic() - t0:6.2f} s', flush=True)


def wait_for(fn, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.3)
    sys.exit(f'FAIL: timed out waiting for {what}')


def check_images(conns):
    t0 = time.monotonic()
    alpha = conns['devcloud-alpha']
    image = alpha.image.create_image(
        name='devcloud-smoke', disk_format='raw', container_format='bare', data=b'devcloud smoke test\n'
    )

    def active_image():
        found = alpha.image.get_image(image.id)
        return found if found.status == 'active' else None

    image = wait_for(active_image, 'image to become active')
    step(f'alpha-member created image {image.id}', t0)
    try:
        for name, conn in conns.items():
            t0 = time.monotonic()
            ids = [i.id for i in conn.image.images(limit=1000)]
            # Images default to 'shared' visibility: beta must not see alpha's.
            expected = name != 'devcloud-beta'
            if (image.id in ids) != expected:
                sys.exit(f'FAIL: {name} sees={not expected} the alpha image')
            step(f'{name} lists {len(ids)} image(s)', t0)
        t0 = time.monotonic()
        try:
            conns['devcloud-reader'].image.create_image(
                name='devcloud-smoke-reader', disk_format='raw', container_format='bare'
            )
        except exceptions.ForbiddenException:
            step('reader cannot create an image (403)', t0)
        else:
            sys.exit('FAIL: reader could create an image')
    finally:
        alpha.image.delete_image(image.id, ignore_missing=True)


def check_nova(conns):
    beta, admin = conns['devcloud-beta'], conns['devcloud-admin']
    t0 = time.monotonic()
    image = beta.image.create_image(
        name='devcloud-smoke-boot', disk_format='raw', container_format='bare', data=b'\0' * 1024
    )
    wait_for(lambda: beta.image.get_image(image.id).status == 'active', 'boot image')
    server = None
    try:
        flavor = beta.compute.find_flavor('devcloud.tiny', ignore_missing=False)
        server = beta.compute.create_server(
            name='devcloud-smoke', image_id=image.id, flavor_id=flavor.id, networks='none'
        )
        server = beta.compute.wait_for_server(server, status='ACTIVE', wait=60)
        step(f'beta-member booted server {server.id} (ACTIVE)', t0)
        t0 = time.monotonic()
        resp = admin.compute.get(f'/servers/detail?image={image.id}&all_tenants=1', microversion='2.1')
        resp.raise_for_status()
        found = [s['id'] for s in resp.json()['servers']]
        if found != [server.id]:
            sys.exit(f'FAIL: servers using the image: {found}, expected [{server.id}]')
        step('admin finds it by image (all_tenants=1)', t0)
    finally:
        t0 = time.monotonic()
        if server is not None:
            beta.compute.delete_server(server.id)
            beta.compute.wait_for_delete(server, wait=60)
            step('server deleted', t0)
        beta.image.delete_image(image.id, ignore_missing=True)


def check_cinder(conns):
    beta, admin = conns['devcloud-beta'], conns['devcloud-admin']
    t0 = time.monotonic()
    image = beta.image.create_image(
        name='devcloud-smoke-volume', disk_format='raw', container_format='bare', data=b'devcloud volume\n' * 64
    )
    wait_for(lambda: beta.image.get_image(image.id).status == 'active', 'volume image')
    volume = uploaded = None
    try:
        volume = beta.block_storage.create_volume(size=1, image_id=image.id, name='devcloud-smoke')

        def available():
            found = beta.block_storage.get_volume(volume.id)
            if found.status == 'error':
                sys.exit(f'FAIL: volume {volume.id} went to error (see cinder-volume.log)')
            return found if found.status == 'available' else None

        wait_for(available, 'volume from image')
        step(f'beta-member made volume {volume.id} from the image', t0)
        t0 = time.monotonic()
        resp = admin.block_storage.get(
            '/volumes/detail',
            params={'all_tenants': 1, 'glance_metadata': json.dumps({'image_id': image.id})},
            headers={'OpenStack-API-Version': 'volume 3.33'},
        )
        resp.raise_for_status()
        found = [v['id'] for v in resp.json()['volumes']]
        if found != [volume.id]:
            sys.exit(f'FAIL: volumes made from the image: {found}, expected [{volume.id}]')
        step('admin finds it by image (glance_metadata filter)', t0)
        t0 = time.monotonic()
        resp = beta.block_storage.post(
            f'/volumes/{volume.id}/action',
            json={'os-volume_upload_image': {'image_name': 'devcloud-smoke-upload', 'disk_format': 'qcow2'}},
        )
        resp.raise_for_status()
        uploaded = resp.json()['os-volume_upload_image']['image_id']

        def upload_done():
            found = beta.image.get_image(uploaded)
            return found if found.status in ('active', 'killed', 'deleted') else None

        done = wait_for(upload_done, 'volume upload to an image')
        if done.status != 'active' or not done.size:
            sys.exit(f'FAIL: uploaded image {uploaded} is {done.status} with size {done.size}')
        step(f'volume uploaded to image {uploaded} ({done.size} bytes)', t0)
    finally:
        if volume is not None:
            wait_for(lambda: beta.block_storage.get_volume(volume.id).status != 'uploading', 'upload end')
            beta.block_storage.delete_volume(volume.id, ignore_missing=True)
        if uploaded is not None:
            beta.image.delete_image(uploaded, ignore_missing=True)
        beta.image.delete_image(image.id, ignore_missing=True)


def main():
    with_nova = '--nova' in sys.argv[1:]
    t0 = time.monotonic()
    conns = {name: openstack.connect(cloud=name) for name in CLOUDS}
    check_images(conns)
    if with_nova:
        check_nova(conns)
        check_cinder(conns)
    print('smoke test passed in %.1f s' % (time.monotonic() - t0))


if __name__ == '__main__':
    main()
