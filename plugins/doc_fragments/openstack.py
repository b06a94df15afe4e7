# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Paired with CONNECTION_ARGSPEC in plugins/module_utils/_base.py: change both together.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  cloud:
    description:
      - Name of a cloud in C(clouds.yaml), or a dict with the cloud's settings.
      - When neither O(cloud) nor O(auth) is given, C(OS_*) environment variables are used.
    type: raw
  auth:
    description:
      - Authentication settings (C(auth_url), C(username), C(password), C(project_name), ...),
        as in a C(clouds.yaml) C(auth) section. Overrides what O(cloud) gives.
    type: dict
  auth_type:
    description: Keystone authentication plugin, for example C(password) or C(v3applicationcredential).
    type: str
  region_name:
    description: Region of the cloud.
    type: str
  interface:
    description: Endpoint interface of the service catalog to use.
    type: str
    choices: [public, internal, admin]
    default: public
    aliases: [endpoint_type]
  validate_certs:
    description: Verify TLS certificates of the cloud's endpoints.
    type: bool
    aliases: [verify]
  ca_cert:
    description: Path to a CA bundle used to verify the endpoints' certificates.
    type: str
    aliases: [cacert]
  client_cert:
    description: Path to a client certificate for TLS client authentication.
    type: str
    aliases: [cert]
  client_key:
    description: Path to the key of O(client_cert).
    type: str
    aliases: [key]
  api_timeout:
    description: Seconds to wait for one API response.
    type: int
  wait:
    description: Wait for asynchronous work (an image import) to finish.
    type: bool
    default: true
  timeout:
    description: Seconds to wait in all when O(wait=true).
    type: int
    default: 1800
requirements:
  - python >= 3.9
  - openstacksdk >= 4.0
notes:
  - Connection options are the same as openstack.cloud's, so C(clouds.yaml), C(OS_*)
    variables, AWX's OpenStack credential and C(module_defaults) for
    C(group/imagegov.openstack.openstack) work unchanged.
"""
