# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One base class owns the connection, the caller's identity and error reporting."""

from __future__ import annotations

import contextlib
import signal
import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import openstack
    import openstack.config
    import openstack.connection
    from keystoneauth1 import exceptions as ksa_exceptions
    from openstack import exceptions as sdk_exceptions
except ImportError:
    HAS_OPENSTACKSDK = False
    OPENSTACKSDK_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_OPENSTACKSDK = True
    OPENSTACKSDK_IMPORT_ERROR = None

from ._errors import ImagegovError
from ._glance import Glance, GlanceError
from ._policy import POLICY_ARGSPEC, PolicyGate, load_module_policy
from ._redact import cloud_secrets, redact_url, redact_urls_in, scrub, url_secrets
from ._usage import UsageLookup
from .policy import PolicyError

# Paired with plugins/doc_fragments/openstack.py: change both together.
CONNECTION_ARGSPEC: dict[str, Any] = dict(
    cloud=dict(type='raw'),
    auth=dict(type='dict', no_log=True),
    auth_type=dict(type='str'),
    region_name=dict(type='str'),
    interface=dict(type='str', default='public', choices=['public', 'internal', 'admin'], aliases=['endpoint_type']),
    validate_certs=dict(type='bool', aliases=['verify']),
    ca_cert=dict(type='str', aliases=['cacert']),
    client_cert=dict(type='str', aliases=['cert']),
    client_key=dict(type='str', aliases=['key'], no_log=False),
    api_timeout=dict(type='int'),
    wait=dict(type='bool', default=True),
    timeout=dict(type='int', default=1800),
)

_SDK_OPTION_NAMES = {
    'auth': 'auth',
    'auth_type': 'auth_type',
    'region_name': 'region_name',
    'interface': 'interface',
    'validate_certs': 'verify',
    'ca_cert': 'cacert',
    'client_cert': 'cert',
    'client_key': 'key',
    'api_timeout': 'api_timeout',
}


class ImagegovModule:
    """Base of every module: subclasses declare ``argument_spec`` and implement ``run()``."""

    argument_spec: dict[str, Any] = {}
    module_kwargs: dict[str, Any] = {}
    enforces_policy = False

    def __init__(self) -> None:
        spec = dict(CONNECTION_ARGSPEC)
        if self.enforces_policy:
            spec.update(POLICY_ARGSPEC)
        spec.update(self.argument_spec)
        self.ansible = _SecretAwareModule(argument_spec=spec, **self.module_kwargs)
        self.params: dict[str, Any] = self.ansible.params
        self._keep_secret(self._option_secrets())
        self.check_mode: bool = self.ansible.check_mode
        self._conn = None
        self._glance: Glance | None = None
        self._caller: dict[str, Any] | None = None
        self._usage: UsageLookup | None = None
        self.result: dict[str, Any] = {'changed': False}
        if not HAS_OPENSTACKSDK:
            self.ansible.fail_json(msg=missing_required_lib('openstacksdk'), exception=OPENSTACKSDK_IMPORT_ERROR)
        self.gate: PolicyGate | None = None
        if self.enforces_policy:
            # Before any connection: a policy that cannot be read means no API call at all.
            try:
                policy = load_module_policy(self.params)
            except PolicyError as exc:
                self.ansible.fail_json(msg=f'{exc}\nNothing was sent to the cloud.', problems=problem_list(exc))
            self.gate = PolicyGate(policy, lambda: self.caller, self.ansible.warn)
            self.gate.usage_provider = self.usage_of

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    @property
    def glance(self) -> Glance:
        if self._glance is None:
            self._glance = Glance(self.conn)
        return self._glance

    def usage_lookup(self) -> UsageLookup:
        """Usage facts as the caller, or as the cloud in option usage_cloud (an admin or
        reader account that may list every project's servers); one lookup per run."""
        if self._usage is None:
            cloud = self.params.get('usage_cloud')
            if cloud is None:
                self._usage = UsageLookup(self.conn)
            else:
                usage_conn = self._connect(cloud, own_auth=False)
                self._same_keystone(usage_conn)
                self._usage = UsageLookup(usage_conn)
        return self._usage

    def _same_keystone(self, usage_conn: Any) -> None:
        """Another cloud's Nova and Cinder know nothing of this cloud's images: their empty
        answer would read as 'unused' (a fleet run with one usage_cloud for every target)."""
        wanted, given = keystone_of(self.conn), keystone_of(usage_conn)
        if wanted and given and wanted != given:
            self.fail(
                f'Option usage_cloud is an account of another cloud (Keystone {redact_url(given)}) than '
                f'option cloud (Keystone {redact_url(wanted)}): its servers and volumes say nothing of this '
                "cloud's images. Give each target its own usage_cloud (on a fleet: a host or group variable)."
            )

    def usage_of(self, image: dict[str, Any]) -> dict[str, Any]:
        """The policy's usage provider: connects for usage only when a rule asks."""
        return self.usage_lookup()(image)

    def _connect(self, cloud: Any = None, own_auth: bool = True):
        options = {
            sdk: self.params[name]
            for name, sdk in _SDK_OPTION_NAMES.items()
            if self.params[name] is not None and (own_auth or name not in ('auth', 'auth_type'))
        }
        cloud = self.params['cloud'] if cloud is None else cloud
        try:
            if isinstance(cloud, dict):
                options.update(cloud)
                conn = openstack.connect(**options)
            else:
                conn = connect_named(cloud, options)
        except sdk_exceptions.SDKException as exc:
            self.fail(
                f'Could not configure the connection to the cloud: {exc}. '
                'Check the cloud / auth options, clouds.yaml or the OS_* variables.'
            )
        else:
            self._keep_connection_secrets(conn)
            return conn

    def _option_secrets(self) -> list[str]:
        return option_secrets(self.params)

    def _keep_connection_secrets(self, conn: Any) -> None:
        """Passwords from clouds.yaml or OS_* variables, and the token the connection holds."""
        with contextlib.suppress(Exception):  # masking is a precaution: never the reason a task fails
            self._keep_secret(cloud_secrets(conn.config.config))
        try:
            # Authenticates now instead of at the first request; the token is cached, so
            # no extra request is made.
            token = conn.session.get_token()
        except ksa_exceptions.ClientException:
            # The first request would meet the same refusal: report it once, as that would.
            raise
        except Exception:
            return
        self._keep_secret([token] if isinstance(token, str) else [])

    def _keep_secret(self, values: list[str]) -> None:
        """Ansible masks these in results, warnings and errors; fail() also scrubs with them."""
        self.ansible.no_log_values.update(value for value in values if value)

    @property
    def caller(self) -> dict[str, Any]:
        """The user, project and roles of the token this module acts with."""
        if self._caller is None:
            access = self.conn.session.auth.get_access(self.conn.session)
            self._caller = dict(
                user=access.username,
                user_id=access.user_id,
                project=access.project_name,
                project_id=access.project_id,
                roles=sorted(access.role_names or []),
            )
        return self._caller

    def resolve_project(self, name_or_id: str) -> str:
        """Project id for a project name or id; an unknown project is an error that names it."""
        if name_or_id in (self.caller['project_id'], self.caller['project']):
            return self.caller['project_id']
        try:
            project = self.conn.identity.find_project(name_or_id, ignore_missing=True)
        except sdk_exceptions.ForbiddenException:
            project = None
            if _looks_like_id(name_or_id):
                return name_or_id
            self.fail(
                f'Cannot resolve project {name_or_id!r}: this user may not look up '
                'projects in Keystone. Give the project id instead of its name.'
            )
        if project is None:
            if _looks_like_id(name_or_id):
                return name_or_id
            self.fail(
                f'Project {name_or_id!r} does not exist in Keystone (or is not visible '
                'to this user). Check the project name or give its id.'
            )
        return project.id

    def fail(self, msg: str, **extra: Any) -> None:
        # Exceptions of requests and keystoneauth, and problems found in a catalog, can quote
        # a URL with its credentials or signed query: scrub the message and its details here,
        # whatever Ansible masks afterwards.
        result = dict(self.result, **self._scrubbed(extra))
        if self.gate is not None:
            result['policy'] = self.gate.report()
        self.ansible.fail_json(msg=self._scrubbed(str(msg)), **result)

    def _scrubbed(self, value: Any) -> Any:
        if isinstance(value, str):
            return scrub(redact_urls_in(value), self.ansible.no_log_values)
        if isinstance(value, dict):
            return {key: self._scrubbed(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._scrubbed(item) for item in value]
        return value

    def exit(self, **result: Any) -> None:
        if self.gate is not None:
            result['policy'] = self.gate.report()
        self.ansible.exit_json(**result)

    def run(self) -> None:
        raise NotImplementedError

    def run_qemu_img(self, args: list[str], started: Any) -> tuple[int, str, str]:
        """The command runner of _convert: ``started`` gets the child to kill on interruption."""
        return self.ansible.run_command(args, before_communicate_callback=started)

    def __call__(self) -> None:
        # A cancelled job (AWX, a timeout) terminates the module: turn that into an
        # exception so half-done work is rolled back instead of left behind.
        signal.signal(signal.SIGTERM, _terminated)
        try:
            self.run()
        except GlanceError as exc:
            self.fail(str(exc), status_code=exc.status_code, request_id=exc.request_id)
        except ImagegovError as exc:
            self.fail(str(exc), **({'problems': problem_list(exc)} if exc.problems else {}))
        except sdk_exceptions.HttpException as exc:
            self.fail(
                f'OpenStack API error: HTTP {exc.status_code}: {exc.details or exc.message}',
                status_code=exc.status_code,
            )
        except sdk_exceptions.SDKException as exc:
            self.fail(f'OpenStack error: {exc}')
        except ksa_exceptions.http.HttpError as exc:
            self.fail(
                f'Keystone refused the request: HTTP {exc.http_status}: {exc.message}. '
                'Check the credentials and project in the cloud / auth options.',
                status_code=exc.http_status,
            )
        except ksa_exceptions.ClientException as exc:
            self.fail(
                f'Cannot reach the cloud: {exc}. Check auth_url in the cloud / auth '
                'options and that the endpoints are reachable from this host.'
            )


def connect_named(cloud: str | None, options: dict[str, Any]):
    """A connection to a clouds.yaml entry, also in a region of its Keystone catalog that the
    entry does not list: openstacksdk otherwise refuses every region but the ones an entry
    names, while a fleet's targets come from the catalog (the clouds inventory plugin)."""
    region = options.get('region_name')
    if not cloud or not region:
        return openstack.connect(cloud=cloud, **options)
    config = openstack.config.OpenStackConfig()
    entry = config.cloud_config.get('clouds', {}).get(cloud)
    if isinstance(entry, dict):
        listed = entry.get('regions') or entry.get('region_name') or []
        listed = [listed] if isinstance(listed, str) else list(listed)
        names = [item.get('name') if isinstance(item, dict) else item for item in listed]
        if names and region not in names:
            entry['regions'] = [*listed, region]
            entry.pop('region_name', None)
    return openstack.connection.Connection(config=config.get_one(cloud=cloud, **options))


def keystone_of(conn: Any) -> str | None:
    """The Keystone a connection authenticates with, comparable across spellings of its URL."""
    try:
        url = str((conn.config.config.get('auth') or {}).get('auth_url') or '').rstrip('/')
    except (AttributeError, TypeError):  # a connection without openstacksdk's config
        return None
    for suffix in ('/v3', '/v2.0'):
        url = url.removesuffix(suffix)
    return url or None


def configured_region(cloud: str | None) -> str | None:
    """The region a clouds.yaml entry (or the OS_* variables) gives, read without a request."""
    try:
        return openstack.config.OpenStackConfig().get_one(cloud=cloud).region_name or None
    except Exception:  # the connection reports a broken configuration, with its own words
        return None


def problem_list(exc: ImagegovError) -> list[dict[str, Any]]:
    """The result key ``problems``: one structured entry per problem, whatever the document."""
    return [problem.as_dict() for problem in exc.problems]


def option_secrets(params: dict[str, Any]) -> list[str]:
    """Secret values inside options that are not no_log as a whole: making ``cloud`` no_log
    would mask an innocent cloud name in every output."""
    options = ('cloud', 'usage_cloud', 'source_cloud')
    secrets = [value for option in options for value in cloud_secrets(params.get(option))]
    return secrets + url_secrets(params.get('url'))


class _SecretAwareModule(AnsibleModule):
    """Masks the secrets nested in options before AnsibleModule logs its invocation to the
    managed host's syslog or journal, which happens while it is built."""

    def _log_invocation(self) -> None:
        self.no_log_values.update(value for value in option_secrets(self.params) if value)
        super()._log_invocation()


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(f'terminated by signal {signum}')


def _looks_like_id(value: str) -> bool:
    return len(value) == 32 and all(c in '0123456789abcdef' for c in value.lower())
