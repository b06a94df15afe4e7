# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One image copied from one cloud to another, streamed and verified on both ends.

The source's download is the upload's body: chunks go from one HTTP response to the other
request, hashed and inspected on the way (ContentScanner), so nothing is written locally
and memory holds a few chunks. The source's own ``os_hash_value`` is the expected digest:
the stream must produce it (checked before the last chunk is sent, so a tampered source
never completes an upload) and the destination's Glance must compute it too. Everything
else - the settling of names, the replacement of changed bytes, rollback - is the image
module's reconciler; this file supplies the source, the carried metadata and the records.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ._content import (
    GLANCE_HASH,
    PRESCAN_BYTES,
    ContentScanner,
    SourceError,
    StoredData,
    _ThreadedHash,
    header_facts,
)
from ._errors import ImagegovError
from ._glance import Glance, GlanceError
from ._identity import DigestCache
from ._image import ContentRequest, ImageReconciler, ImageRequestError, desired_image
from ._members import MemberReconciler, share_view
from ._operations import Kind, OperationLog
from ._redact import redact_url, redact_urls_in
from ._state import (
    BOOKKEEPING_PREFIX,
    BUILD_RECORD_PROPERTIES,
    READ_ONLY_FIELDS,
    SHA256_PROPERTY,
    make_diff,
    simulated_new_image,
)

# Where a copy came from: hints for people (any member may edit them); whether the copy is
# current is decided by Glance's own os_hash_value at both ends, never by these.
SOURCE_CLOUD_PROPERTY = 'imagegov_source_cloud'
SOURCE_ID_PROPERTY = 'imagegov_source_image'
SOURCE_HASH_PROPERTY = 'imagegov_source_hash'
SOURCE_PROPERTIES = (SOURCE_CLOUD_PROPERTY, SOURCE_ID_PROPERTY, SOURCE_HASH_PROPERTY)
# Digests a stream can be checked in (hashlib names Glance uses for os_hash_algo).
VERIFIABLE = ('sha256', 'sha384', 'sha512', 'sha3_256', 'sha3_512', 'blake2b')
# Fields that belong to the source cloud, or that the destination's Glance sets itself.
PER_CLOUD = frozenset(
    {
        'owner',
        'visibility',
        'protected',
        'os_hidden',
        'tags',
        'name',
        'disk_format',
        'container_format',
        'min_disk',
        'min_ram',
        'kernel_id',
        'ramdisk_id',
        'members',
        # Snapshot records naming the source cloud's servers, users and projects.
        'instance_uuid',
        'base_image_ref',
        'owner_project_name',
        'owner_user_name',
        'user_id',
        'boot_roles',
        'image_location',
        'image_state',
        'owner_id',
    }
)
CARRIED_ATTRIBUTES = ('disk_format', 'container_format', 'min_disk', 'min_ram')


class TransferError(ImagegovError):
    """The transfer cannot be made as asked; the message says what to change."""


def carried_properties(image: dict[str, Any]) -> dict[str, str]:
    """The source's free-form properties that mean the same at the destination: not Glance's
    read-only or per-cloud fields, not its import bookkeeping (os_glance*), not this
    collection's records of the source cloud (its sha256 is recorded anew after upload)."""
    carried = {}
    for key, value in image.items():
        if key in READ_ONLY_FIELDS or key in PER_CLOUD or key == SHA256_PROPERTY:
            continue
        if key.startswith('os_glance') or key.startswith('os_hash'):
            continue
        if key.startswith(BOOKKEEPING_PREFIX) and key not in BUILD_RECORD_PROPERTIES:
            continue
        if value is None or isinstance(value, (dict, list)):
            continue
        carried[key] = 'true' if value is True else 'false' if value is False else str(value)
    return carried


def source_label(cloud: Any, conn: Any) -> str:
    """The source cloud as recorded on the copy: its clouds.yaml name, else its auth URL
    (without credentials) and region."""
    if isinstance(cloud, str):
        return cloud
    region = conn.config.get_region_name()
    if isinstance(cloud.get('cloud'), str):
        name = cloud['cloud']
    else:
        name = redact_url(str((conn.config.config.get('auth') or {}).get('auth_url') or 'unknown'))
    return f'{name} {region}' if region else name


class SourceImage(StoredData):
    """The data of an image in the source cloud, streamed through its Glance download."""

    def __init__(self, glance: Glance, image: dict[str, Any], cloud: str) -> None:
        super().__init__(glance, image['id'])
        self.image = image
        self.cloud = cloud
        self.label = f'image {image.get("name")!r} ({image["id"]}) of cloud {cloud}'
        self.algo = image.get('os_hash_algo')
        self.expected = image.get('os_hash_value')
        self.bytes_read = 0

    def stream(self, first_bytes: int | None = None) -> tuple[int | None, Iterator[bytes]]:
        length, chunks = super().stream(first_bytes)
        if first_bytes is None and None not in (length, self.image.get('size')) and length != self.image['size']:
            raise SourceError(
                f'{self.label}: Glance announces {length} bytes for a download of an image of '
                f'{self.image["size"]} bytes. Nothing was sent to the destination.'
            )
        return length, self._counted(chunks)

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.bytes_read += len(chunk)
            yield chunk


class MirrorSource(SourceImage):
    """A catalog mirror's source: a failure of the source cloud while its bytes are read (the
    header for the plan, the whole stream for the copy) is a SourceError naming that cloud, so
    it fails that entry (its copy rolled back), never the whole run nor blamed on the destination."""

    def stream(self, first_bytes: int | None = None) -> tuple[int | None, Iterator[bytes]]:
        try:
            return super().stream(first_bytes)
        except Exception as exc:
            raise _as_source_error(exc, self.cloud) from exc

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from super()._counted(chunks)
        except Exception as exc:
            raise _as_source_error(exc, self.cloud) from exc


def _as_source_error(exc: Exception, cloud: str) -> Exception:
    failure = source_cloud_failure(exc, cloud)
    return exc if failure is None else SourceError(failure[0])


# Answers that say the source cloud itself fails (its account refused, its service failing),
# not the one request: the other entries from that cloud would get them too.
_CLOUD_STATUSES = (401, 403)


def source_cloud_failure(exc: BaseException, cloud: str) -> tuple[str, bool] | None:
    """What a failed request to a source cloud says (URLs redacted), and whether the failure
    is the cloud's - unreachable, refusing its account, failing (5xx) - rather than the one
    request's; None for an error that is not a failed request."""
    import requests
    from keystoneauth1 import exceptions as ksa_exceptions
    from openstack import exceptions as sdk_exceptions

    status = None
    if isinstance(exc, GlanceError):
        status, reason = exc.status_code, str(exc)
    elif isinstance(exc, ksa_exceptions.http.HttpError):
        status, reason = exc.http_status, f'{type(exc).__name__}: {exc}'
    elif isinstance(exc, sdk_exceptions.HttpException):
        status, reason = exc.status_code, f'{type(exc).__name__}: {exc}'
    elif isinstance(exc, (ksa_exceptions.ClientException, sdk_exceptions.SDKException, requests.RequestException)):
        reason = f'{type(exc).__name__}: {exc}'  # no answer: unreachable, timed out, no endpoint
    else:
        return None
    whole = status is None or status in _CLOUD_STATUSES or status >= 500
    reason = redact_urls_in(reason)
    if not whole:
        return f'source.cloud {cloud!r}: {reason}', False
    return (
        f'source.cloud {cloud!r} failed: {reason}. Check its entry in clouds.yaml (auth_url, account) '
        'and that its Keystone and Glance are reachable from this host; the other entries from this '
        'cloud are not tried again in this run.',
        True,
    )


class VerifyingScanner(ContentScanner):
    """The upload's one read (hashed, inspected), holding back the last chunk until the
    source's digest is complete: bytes changed behind the source Glance's back (its store
    edited, a broken disk) never complete an upload. The digest is the scanner's own when
    the source uses Glance's usual algorithm, so the stream is hashed once, in one thread
    beside the one that moves the bytes."""

    def __init__(self, source: SourceImage) -> None:
        self.verify_algo, self.verify_expected = source.algo, source.expected
        # No sha256 of its own: the copy is proven by the Glances' algorithm at both ends.
        self.with_sha256 = source.algo == 'sha256'
        self.own_hash = None
        if source.algo not in (GLANCE_HASH, 'sha256'):
            self.own_hash = _ThreadedHash(source.algo)
        super().__init__(source, GLANCE_HASH)

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        held = None
        try:
            for chunk in super()._counted(chunks):  # each chunk is hashed before it comes out
                if self.own_hash is not None:
                    self.own_hash.update(chunk)
                if held is not None:
                    yield held
                held = chunk
            found = self._digest()
            if found != self.verify_expected:
                raise SourceError(
                    f'{self.source.label}: the bytes read have {self.verify_algo} {found}, but the source Glance '
                    f'recorded {self.verify_expected} for it - its stored data was changed or damaged. '
                    'The last chunk was not sent and the destination image was removed.'
                )
        except BaseException as exc:
            self.error = self.error or exc
            if self.own_hash is not None:
                self.own_hash.close()
            raise
        if held is not None:
            yield held

    def _digest(self) -> str:
        if self.own_hash is not None:
            return self.own_hash.hexdigest()
        if self.verify_algo == 'sha256':
            return self.sha256.hexdigest()
        return self.glance_hash.hexdigest()


class RunDigests(DigestCache):
    """Digests of this run only: a copy is verified against Glance's hashes at both ends, so
    nothing is kept on (or written to) the host the module runs on."""

    def _read(self) -> dict[str, dict[str, Any]]:
        return {}

    def flush(self) -> None:
        self._pending = {}


def source_facts(source: SourceImage) -> dict[str, Any]:
    """What the policy is asked about before any destination request: the header of the
    source's data (a Range request), sized as the source Glance says the whole is."""
    image = source.image
    facts = header_facts(ContentScanner(source, first_bytes=PRESCAN_BYTES).consume())
    facts.pop('sha256', None)
    facts['size'] = image.get('size') if image.get('size') is not None else facts.get('size')
    sizes = [size for size in (image.get('virtual_size'), facts.get('virtual_size')) if size is not None]
    facts['virtual_size'] = max(sizes) if sizes else None
    facts['complete'] = False
    return facts


def check_source(image: dict[str, Any], label: str) -> None:
    if image.get('status') != 'active':
        raise TransferError(
            f'{label} is {image.get("status")}: only an active image has data to transfer. '
            'Wait for it, or reactivate it at the source.'
        )
    algo, value = image.get('os_hash_algo'), image.get('os_hash_value')
    if not (algo and value):
        raise TransferError(
            f'{label} has no os_hash_value (uploaded before Glance recorded one): the copy could not be '
            'verified. Re-upload it at the source (the image module records a hash), then transfer it.'
        )
    if algo not in VERIFIABLE:
        raise TransferError(f'{label} is hashed with {algo!r}, which this module cannot verify ({VERIFIABLE}).')


def source_records(cloud: str, image: dict[str, Any]) -> dict[str, str]:
    return {
        SOURCE_CLOUD_PROPERTY: cloud,
        SOURCE_ID_PROPERTY: image['id'],
        SOURCE_HASH_PROPERTY: f'{image["os_hash_algo"]}:{image["os_hash_value"]}',
    }


def connect_source(
    module: Any, cloud: Any, api_timeout: int | None, what: str = 'option source_cloud'
) -> tuple[Glance, str, str | None]:
    """The source cloud's Glance (a clouds.yaml name or a dict of connection settings), its
    label as recorded on copies, and its region; its secrets are kept out of the output."""
    import openstack
    from openstack import exceptions as sdk_exceptions

    from ._base import connect_named

    options = {'api_timeout': api_timeout} if api_timeout else {}
    try:
        if isinstance(cloud, dict):
            conn = openstack.connect(**dict(options, **cloud))
        elif isinstance(cloud, str):
            conn = connect_named(cloud, options)
        else:
            raise TransferError(
                f'{what[0].upper()}{what[1:]}: give a clouds.yaml name or a dict of connection settings.'
            )
    except sdk_exceptions.SDKException as exc:
        raise TransferError(f'Could not configure the connection to the source cloud: {exc}. Check {what}.') from exc
    module._keep_connection_secrets(conn)
    return Glance(conn), source_label(cloud, conn), conn.config.get_region_name()


class StoreTargeting:
    """The destination's Glance, with every upload and import aimed at the chosen stores of a
    multi-store Glance (one store for a plain upload, any number for an import)."""

    def __init__(self, glance: Glance, stores: list[str] | None, all_stores: bool) -> None:
        self._glance = glance
        self._stores = stores
        self._all_stores = all_stores

    def __getattr__(self, name: str) -> Any:
        return getattr(self._glance, name)

    def upload(self, image_id: str, chunks: Any) -> None:
        self._glance.upload(image_id, chunks, store=self._stores[0] if self._stores else None)

    def start_import(self, image_id: str, method: str, uri: str | None = None, method_fields: Any = None) -> None:
        extra: dict[str, Any] = {}
        if self._stores:
            extra['stores'] = self._stores
        if self._all_stores:
            extra.update(all_stores=True, all_stores_must_succeed=True)
        self._glance.start_import(image_id, method, uri, method_fields=method_fields, extra=extra or None)


class TransferReconciler(ImageReconciler):
    """The image reconciler with a source in another cloud: a plan never reads the data
    (the source's hash is known; the header was read for the policy already), and a
    glance-download import is judged on what the destination's Glance stored."""

    glance_download: dict[str, Any] | None = None

    def _scanner(self, content: ContentRequest) -> ContentScanner:
        return VerifyingScanner(content.source)

    def _upload(self, image: dict[str, Any], content: ContentRequest) -> dict[str, Any]:
        if content.import_method == 'glance-download':
            return self._glance_download(image, content)
        if not self.check_mode:
            return super()._upload(image, content)
        self._record(Kind.UPLOAD, f'upload ({content.import_method}) from {content.source.label}')
        facts = dict(content.prescan or {})
        self._ask('upload', image, image, facts)
        return dict(image, status='active', size=facts.get('size'), virtual_size=facts.get('virtual_size'))

    def _wait_imported(self, image_id: str) -> dict[str, Any]:
        """Wait for the import; a failed import task (Glance could not fetch or store the
        data) is an error at once, with Glance's message, instead of a wait for the timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            image = self.glance.get_image(image_id)
            if image is None or image.get('status') in ('active', 'deactivated', 'killed', 'deleted'):
                return self._wait_active(image_id)
            if not self.wait and image.get('status') != 'queued':
                return image
            try:
                tasks = self.glance.image_tasks(image_id)
            except GlanceError:  # a Glance that does not show them: wait for the status alone
                tasks = []
            failed = [task for task in tasks if task.get('status') == 'failure']
            if failed:
                raise ImageRequestError(
                    f'Glance could not import image {image_id} by glance-download: {failed[0].get("message")}. '
                    'It was removed.'
                )
            if time.monotonic() > deadline:
                raise ImageRequestError(
                    f'Image {image_id} was still {image.get("status")} after {self.timeout} s (option timeout). '
                    'It was removed; raise timeout and run again.'
                )
            time.sleep(1)

    def _glance_download(self, image: dict[str, Any], content: ContentRequest) -> dict[str, Any]:
        """The destination's Glance copies the image from the source region itself: nothing
        passes through this host, so what it stored must have the source's hash and size,
        and is judged again by the policy, before the task returns (else it is removed)."""
        source = content.source
        self._record(Kind.UPLOAD, f'import (glance-download) of {source.label}')
        if self.check_mode:
            self._ask('upload', image, image, content.prescan)
            return dict(image, status='active', size=source.image.get('size'))
        self.glance.start_import(image['id'], 'glance-download', method_fields=self.glance_download)
        stored = self._wait_imported(image['id'])
        if stored.get('status') not in ('active', 'deactivated'):
            return stored  # wait=false
        algo = source.algo
        if (stored.get('os_hash_algo'), stored.get('os_hash_value'), stored.get('size')) != (
            algo,
            source.expected,
            source.image.get('size'),
        ):
            raise SourceError(
                f'The destination Glance stored {stored.get("size")} bytes with {stored.get("os_hash_algo")} '
                f'{stored.get("os_hash_value")} from {source.label}, which has {source.image.get("size")} bytes '
                f'with {algo} {source.expected}: the copy was removed.'
            )
        facts = self._stored_facts(stored)
        self.outcome.content = dict(facts, identity='verified')
        self._ask('upload', stored, stored, facts)
        return stored


class Transfer:
    """The image_transfer module's run: the source image (and its kernel and ramdisk)
    copied into the destination, each through a TransferReconciler."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.params = module.params
        self.gate = module.gate
        self.operations = OperationLog()
        self.reconcilers: list[ImageReconciler] = []
        self.sources: list[SourceImage] = []
        self.bytes_sent = 0
        self.started = time.monotonic()
        self.source_region: str | None = None
        self._destination_checked = False

    def run(self) -> dict[str, Any]:
        p = self.params
        src_glance, label, self.source_region = self._connect_source()
        image = src_glance.find(p['image'], 'Option image', f'Give its id, as it is in cloud {label}.')
        if image is None:
            raise TransferError(
                f'Option image: no image {p["image"]!r} (by id or name) is visible in cloud {label}. '
                'Check the name and the source_cloud account.'
            )
        visibility = p['visibility'] or ('shared' if p['members'] else 'private')
        # Keystone only: a project that does not exist stops the run before any Glance request.
        members = None if p['members'] is None else [self.module.resolve_project(m) for m in p['members']]
        try:
            outcome, content = self._copy(
                src_glance, image, label, p['name'] or image['name'], p['properties'], p['tags'], visibility, True
            )
            result: dict[str, Any] = {}
            if members is not None:
                self._share(outcome, members)
                result['members'] = outcome.after.get('members', [])
        except BaseException:
            for reconciler in reversed(self.reconcilers):
                reconciler.rollback()
            raise
        after = outcome.after or {}
        result.update(
            changed=any(r.outcome.changed for r in self.reconcilers) or outcome.changed,
            image=after,
            operations=self.operations,
            diff=make_diff(outcome.before, outcome.after),
            caller=self.module.caller,
            source={
                'cloud': label,
                **{key: image.get(key) for key in ('id', 'name', 'size', 'os_hash_algo', 'os_hash_value')},
            },
            transfer={
                'bytes_read': sum(source.bytes_read for source in self.sources),
                'bytes_sent': self.bytes_sent,
                'seconds': round(time.monotonic() - self.started, 3),
            },
        )
        if after.get('id'):
            result['id'] = after['id']
        if content:
            result['content'] = content
        return result

    def _connect_source(self) -> tuple[Glance, str, str | None]:
        return connect_source(self.module, self.params['source_cloud'], self.params['api_timeout'])

    def _copy(
        self,
        src_glance: Glance,
        image: dict[str, Any],
        label: str,
        name: str,
        overrides: dict[str, Any] | None,
        tags: list[str] | None,
        visibility: str,
        main: bool,
    ) -> tuple[Any, dict[str, Any] | None]:
        source = SourceImage(src_glance, image, label)
        check_source(image, source.label)
        self.sources.append(source)
        properties = dict(carried_properties(image), **(overrides or {}))
        params = dict(
            {key: image.get(key) for key in CARRIED_ATTRIBUTES},
            name=name,
            visibility=visibility,
            properties=properties,
            tags=list(image.get('tags') or []) if tags is None else tags,
            purge_tags=True,
        )
        desired = desired_image(params, None, None, None)
        data_source = {'kind': 'glance', 'cloud': label, 'image_id': image['id']}
        facts = source_facts(source)
        # Asked before any request reaches the destination's Glance.
        self.gate.check('create', simulated_new_image(desired), None, facts, data_source=data_source)
        for key, option in (('kernel_id', 'kernel'), ('ramdisk_id', 'ramdisk')):
            linked = self._related(src_glance, image, label, key, option if main else None)
            if linked:
                desired.properties[key] = linked
        desired.properties.update(source_records(label, image))
        glance = self.module.glance
        self._check_destination(glance)
        found = glance.images_named(name, owner=self.module.caller['project_id'])
        stores, all_stores = self.params['stores'], self.params['all_stores']
        reconciler = TransferReconciler(
            StoreTargeting(glance, stores, all_stores) if stores or all_stores else glance,
            self.module.caller['project_id'],
            self.module.check_mode,
            self.params['wait'],
            self.params['timeout'],
            self.gate,
            RunDigests(),
            operations=self.operations,
        )
        self.reconcilers.append(reconciler)
        if self.params['import_method'] == 'glance-download':
            reconciler.glance_download = {
                'glance_image_id': image['id'],
                'glance_region': self.source_region,
                'glance_service_interface': self.params['interface'] or 'public',
            }
        content = ContentRequest(
            source,
            self.params['import_method'],
            {image['os_hash_algo']: image['os_hash_value']},
            self.params['on_content_change'],
            facts,
            data_source,
        )
        before = source.bytes_read
        outcome = reconciler.present(found, desired, content, False)
        streamed = outcome.content if outcome.content and outcome.content.get('size') is not None else None
        if streamed and not self.module.check_mode and source.bytes_read > before:
            self.bytes_sent += streamed['size']
        return outcome, streamed

    def _check_destination(self, glance: Glance) -> None:
        """The import method and stores asked for must be what the destination's Glance
        offers: read once, before anything is created there."""
        if self._destination_checked:
            return
        self._destination_checked = True
        p = self.params
        if p['import_method'] == 'glance-download':
            methods = glance.import_methods()
            if 'glance-download' not in methods:
                raise TransferError(
                    'Option import_method: the destination Glance does not offer glance-download (it offers '
                    f'{", ".join(methods) or "none"}). Use import_method put (streamed through this host).'
                )
            if not self.source_region:
                raise TransferError(
                    'Option import_method: glance-download needs the source region; give region_name in source_cloud.'
                )
        if p['stores'] or p['all_stores']:
            known = glance.store_ids()
            if not known:
                raise TransferError(
                    'Options stores / all_stores: the destination Glance has no multiple stores (/v2/info/stores). '
                    'Leave them out.'
                )
            unknown = sorted(set(p['stores'] or []) - set(known))
            if unknown:
                raise TransferError(
                    f'Option stores: the destination Glance has no store {", ".join(unknown)} '
                    f'(it has {", ".join(known)}).'
                )
            if p['import_method'] == 'put' and (p['all_stores'] or len(p['stores'] or []) > 1):
                raise TransferError(
                    'Options stores / all_stores: a plain upload (import_method put) reaches one store; '
                    'use import_method glance-direct for several.'
                )

    def _related(
        self, src_glance: Glance, image: dict[str, Any], label: str, key: str, option: str | None
    ) -> str | None:
        """The destination's id for the source's kernel_id / ramdisk_id: the image the option
        names, else the source's kernel (ramdisk) transferred first under its own name."""
        wanted = self.params[option] if option else None
        if wanted:
            found = self.module.glance.find(wanted, f'Option {option}')
            if found is None:
                raise TransferError(
                    f'Option {option}: no image {wanted!r} (by id or name) is visible at the destination.'
                )
            return found['id']
        if not image.get(key):
            return None
        linked = src_glance.live_image(image[key])
        if linked is None:
            raise TransferError(
                f'Image {image.get("name")!r} of cloud {label} has {key} {image[key]}, which is not visible there. '
                f'Give option {key[:-3]} (an image at the destination) instead.'
            )
        outcome, _content = self._copy(src_glance, linked, label, linked['name'], None, None, 'private', False)
        return (outcome.after or {}).get('id')

    def _share(self, outcome: Any, members: list[str]) -> None:
        image = outcome.after or {}
        operations = self.reconcilers[-1].outcome.operations
        if not image.get('id'):  # a plan that creates the copy: it has no members yet
            if members:
                self.gate.check('share', share_view(image, dict.fromkeys(members, 'pending')), share_view(image, {}))
                for member in members:
                    operations.add(Kind.SHARE, f'add member {member}')
                outcome.changed = True
            outcome.after = dict(image, members=sorted(members))
            return
        sharing = MemberReconciler(self.module.glance, self.gate, self.module.caller, self.module.check_mode)
        shared = sharing.share(image, members, 'present', True, True)
        outcome.after = dict(shared.image or image, members=sorted(shared.after))
        if shared.changed:
            operations.extend(shared.operations)
            outcome.changed = True
            outcome.before = dict(outcome.before or {}, members=sorted(shared.before))
