"""A member of the destination project plants an image under the copy's name with other
bytes and the source records the module writes: python forge.py CLOUD NAME PROPERTIES_JSON."""

import json
import os
import sys

import openstack

cloud, name, properties = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
conn = openstack.connect(cloud=cloud)
image = conn.image.post(
    '/images', json=dict(properties, name=name, disk_format='raw', container_format='bare', visibility='private')
).json()
conn.image.put(
    f'/images/{image["id"]}/file', data=os.urandom(1 << 20), headers={'Content-Type': 'application/octet-stream'}
)
print(image['id'])
