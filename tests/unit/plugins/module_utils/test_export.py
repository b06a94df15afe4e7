"""image_export's pure logic: the sparse writer, the part file's binding to the image, the
record that makes an export idempotent, verification, resumption, and the OVF that carries
the image's properties to the OVA and back through _ova."""

from __future__ import annotations

import hashlib
import os
import pathlib
import stat
import subprocess
from types import SimpleNamespace

import pytest
import requests
from glance_double import GlanceDouble

from ansible_collections.imagegov.openstack.plugins.module_utils._export import (
    HOLE_SIZE,
    Exporter,
    ExportError,
    ExportSpec,
    SparseWriter,
    expected_digest,
    parse_mode,
    part_path,
    stale_parts,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._ova import (
    OvaError,
    carried_property,
    nova_properties,
    parse_ovf,
    read_ova,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._ova_pack import (
    VMWARE_OS_IDS,
    build_ovf,
    carried_properties,
    pack_ova,
)

MIB = 1024**2


def run(args, started):
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started(process)
    out, err = process.communicate()
    return process.returncode, out, err


def disk_bytes(size: int = 4 * MIB) -> bytes:
    """Mostly zeros, with data at unaligned places."""
    data = bytearray(size)
    for offset in (100, 3 * HOLE_SIZE + 17, size // 2, size - 10):
        data[offset : offset + 5] = b'abcde'
    return bytes(data)


# --- the sparse writer ------------------------------------------------------------------


@pytest.mark.parametrize('chunk', [1000, HOLE_SIZE, 3 * HOLE_SIZE + 7, MIB])
def test_sparse_writer_writes_the_stream_and_skips_zero_blocks(tmp_path, chunk):
    data = disk_bytes()
    path = tmp_path / 'out'
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    writer = SparseWriter(fd, 0)
    for start in range(0, len(data), chunk):
        writer.write(data[start : start + chunk])
    writer.finish()
    os.close(fd)
    assert path.read_bytes() == data
    assert writer.skipped >= len(data) - 6 * HOLE_SIZE
    assert path.stat().st_blocks * 512 <= 8 * HOLE_SIZE  # holes, not written zeros


def test_sparse_writer_resumes_at_an_unaligned_offset_and_its_length_is_a_prefix(tmp_path):
    data = disk_bytes()
    path = tmp_path / 'out'
    path.write_bytes(data[:12345])
    fd = os.open(path, os.O_RDWR)
    writer = SparseWriter(fd, 12345)
    writer.write(data[12345 : len(data) // 2 + 3])
    # Not finished (a killed run): the file ends where data was last written - a prefix.
    written = os.fstat(fd).st_size
    assert path.read_bytes() == data[:written]
    writer.write(data[len(data) // 2 + 3 :])
    writer.finish()
    os.close(fd)
    assert path.read_bytes() == data


def test_sparse_writer_extends_over_a_trailing_hole(tmp_path):
    path = tmp_path / 'out'
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    writer = SparseWriter(fd, 0)
    writer.write(b'x' + bytes(5 * HOLE_SIZE))
    assert os.fstat(fd).st_size == HOLE_SIZE  # the block with data only
    writer.finish()
    os.close(fd)
    assert path.stat().st_size == 5 * HOLE_SIZE + 1


# --- the part file's binding ------------------------------------------------------------


def test_the_part_file_is_bound_to_the_image_and_its_data(tmp_path):
    path = str(tmp_path / 'disk.raw')
    image = {'id': '11111111-2222-3333-4444-555555555555'}
    first = part_path(path, image, 'a' * 128)
    assert os.path.dirname(first) == str(tmp_path) and os.path.basename(first).startswith('.disk.raw.')
    assert first != part_path(path, image, 'b' * 128)
    assert first != part_path(path, {'id': '11111111-2222-3333-4444-666666666666'}, 'a' * 128)
    other = part_path(path, image, 'b' * 128)
    for name in (first, other, str(tmp_path / '.disk.raw2.x.y.imagegov-part')):
        open(name, 'wb').close()
    assert stale_parts(path, first) == [other]


def test_mode_is_octal():
    assert parse_mode('0644') == 0o644 and parse_mode('600') == 0o600 and parse_mode(0o640) == 0o640
    assert parse_mode(None) is None
    with pytest.raises(ExportError, match='octal'):
        parse_mode('u+rw')


@pytest.mark.parametrize(
    ('fields', 'message'),
    [
        ({'status': 'queued', 'size': None}, 'upload its data first'),
        ({'status': 'deactivated'}, 'reactivate it first'),
        ({'status': 'importing'}, 'run again once it is active'),
        ({'status': 'active', 'size': 10, 'os_hash_value': None, 'checksum': None}, 'could not be verified'),
    ],
)
def test_images_without_data_to_export_are_refused_by_name(fields, message):
    image = dict({'id': 'i-1', 'name': 'gold', 'size': 10, 'os_hash_algo': 'sha512', 'os_hash_value': 'ab'}, **fields)
    with pytest.raises(ExportError, match=message) as caught:
        expected_digest(image)
    assert "'gold' (i-1)" in str(caught.value)


def test_an_image_without_os_hash_value_is_verified_with_its_md5():
    image = {'id': 'i', 'status': 'active', 'size': 1, 'os_hash_value': None, 'checksum': 'c' * 32}
    assert expected_digest(image) == ('md5', 'c' * 32)


# --- exporting against an in-memory Glance ----------------------------------------------


@pytest.fixture()
def cloud():
    glance = GlanceDouble()
    data = disk_bytes()
    image = glance.add('gold', data, disk_format='raw')
    return SimpleNamespace(glance=glance, data=data, image=image)


def export(cloud, path, **options):
    exporter = Exporter(cloud.glance, cloud.glance.images[cloud.image['id']], ExportSpec(str(path), **options), run)
    return exporter, *exporter.apply()


def downloads(glance):
    return [call for call in glance.calls if call[0] == 'download']


def test_an_export_is_verified_sparse_recorded_and_then_current(cloud, tmp_path):
    target = tmp_path / 'disk.raw'
    exporter, plan, output = export(cloud, target)
    assert plan.action == 'download' and target.read_bytes() == cloud.data
    assert output['digest'] == {'algo': 'sha512', 'value': cloud.image['os_hash_value']}
    assert output['allocated'] < len(cloud.data) // 4
    assert not os.path.exists(exporter.part)
    assert sorted(os.listdir(tmp_path)) == ['.disk.raw.imagegov-export', 'disk.raw']
    assert oct(os.stat(exporter.record.path).st_mode & 0o777) == '0o600'
    again, plan, _output = export(cloud, target)
    assert plan.action == 'none' and len(downloads(cloud.glance)) == 1
    assert again.rehashed_seconds is None  # the record proved it: not read at all
    assert export(cloud, target, force=True)[1].action == 'download'


def test_without_a_record_a_file_as_stored_is_hashed_again(cloud, tmp_path):
    target = tmp_path / 'disk.raw'
    exporter, *_rest = export(cloud, target)
    os.unlink(exporter.record.path)
    again, plan, _output = export(cloud, target)
    assert plan.action == 'record' and again.rehashed_seconds is not None
    assert len(downloads(cloud.glance)) == 1
    target.write_bytes(cloud.data[:-1] + b'!')  # same size, other bytes
    assert export(cloud, target)[1].action == 'download'
    assert target.read_bytes() == cloud.data


def test_a_correct_part_file_is_resumed_with_a_range(cloud, tmp_path):
    target = tmp_path / 'disk.raw'
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(target)), run)
    with open(exporter.part, 'wb') as part:
        part.write(cloud.data[:1_000_003])
    plan, _output = exporter.apply()
    assert plan.action == 'resume'
    assert exporter.facts['resumed_from'] == exporter.facts['hashed'] == 1_000_003
    assert exporter.facts['downloaded'] == len(cloud.data) - 1_000_003
    assert downloads(cloud.glance) == [('download', cloud.image['id'], 1_000_003)]
    assert target.read_bytes() == cloud.data


def test_a_tampered_part_file_is_caught_removed_and_never_published(cloud, tmp_path):
    target = tmp_path / 'disk.raw'
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(target)), run)
    with open(exporter.part, 'wb') as part:
        part.write(cloud.data[:50] + b'X' + cloud.data[51:2_000_000])
    with pytest.raises(ExportError, match='part file was removed') as caught:
        exporter.apply()
    assert cloud.image['id'] in str(caught.value) and cloud.image['os_hash_value'] in str(caught.value)
    assert not target.exists() and not os.path.exists(exporter.part)


def test_a_changed_image_never_resumes_onto_old_bytes(cloud, tmp_path):
    target = tmp_path / 'disk.raw'
    old = Exporter(cloud.glance, cloud.image, ExportSpec(str(target)), run)
    with open(old.part, 'wb') as part:
        part.write(cloud.data[:1000])
    changed = cloud.glance.add('gold-2', b'new' + cloud.data[3:], disk_format='raw')
    exporter = Exporter(cloud.glance, changed, ExportSpec(str(target)), run)
    assert exporter.part != old.part
    plan, _output = exporter.apply()
    assert plan.action == 'download' and exporter.facts['resumed_from'] == 0
    assert not os.path.exists(old.part)
    assert target.read_bytes() == b'new' + cloud.data[3:]


class _Dropping(GlanceDouble):
    """Breaks the first download off after its first MiB, as a dropped connection does."""

    dropped = False

    def download(self, image_id, first_bytes=None, offset=0):
        total, chunks = super().download(image_id, first_bytes, offset)
        if self.dropped:
            return total, chunks
        self.dropped = True
        data = b''.join(chunks)

        def broken():
            yield data[:MIB]
            raise requests.exceptions.ChunkedEncodingError('Connection broken: IncompleteRead')

        return total, broken()


def test_a_dropped_connection_is_resumed_within_the_run(tmp_path):
    glance = _Dropping()
    data = os.urandom(3 * MIB)
    image = glance.add('gold', data, disk_format='raw')
    exporter = Exporter(glance, image, ExportSpec(str(tmp_path / 'disk.raw')), run)
    plan, output = exporter.apply()
    assert plan.action == 'download' and exporter.facts['retries'] == 1
    assert downloads(glance) == [('download', image['id']), ('download', image['id'], MIB)]
    assert (tmp_path / 'disk.raw').read_bytes() == data and output['size'] == len(data)


def test_check_mode_plans_without_writing(cloud, tmp_path):
    target = tmp_path / 'disk.raw'
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(target)), run)
    with open(exporter.part, 'wb') as part:
        part.write(cloud.data[:4096])
    plan = exporter.plan()
    assert plan.action == 'resume' and plan.part_size == 4096
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(exporter.part)]
    assert downloads(cloud.glance) == []


def test_destination_errors_name_the_directory(cloud, tmp_path):
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(tmp_path / 'missing' / 'x.raw')), run)
    with pytest.raises(ExportError, match='does not exist; create it first'):
        exporter.check_destination()
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(tmp_path)), run)
    with pytest.raises(ExportError, match='is a directory'):
        exporter.check_destination()


def test_a_symlink_planted_as_part_file_is_refused(cloud, tmp_path):
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(tmp_path / 'disk.raw')), run)
    victim = tmp_path / 'victim'
    victim.write_bytes(b'keep me')
    os.symlink(victim, exporter.part)
    with pytest.raises(OSError):
        exporter.apply()
    assert victim.read_bytes() == b'keep me'


# --- the OVF and the OVA ----------------------------------------------------------------

PROPERTIES = {
    'os_type': 'linux',
    'os_distro': 'ubuntu',
    'hw_firmware_type': 'uefi',
    'os_secure_boot': 'required',
    'hw_disk_bus': 'scsi',
    'hw_scsi_model': 'virtio-scsi',
    'hw_vif_model': 'virtio',
    'hw_qemu_guest_agent': 'yes',
    'description': 'a <b> & "c"',
}


def glance_image(**properties):
    return {
        'id': 'i-1',
        'name': 'gold image',
        'status': 'active',
        'size': 10,
        'disk_format': 'raw',
        'min_ram': 2048,
        'created_at': '2026-11-25T10:00:00Z',
        'os_hash_algo': 'sha512',
        'os_hash_value': 'f' * 128,
        'imagegov_ovf_cpus': '4',
        'kernel_id': 'k-1',
        'owner_specified.openstack.sha256': 'a' * 64,
        'imagegov_source_sha256': 'b' * 64,
        **properties,
    }


def mapped(descriptor_bytes: bytes) -> dict:
    descriptor = parse_ovf(descriptor_bytes, 'test.ovf')
    return nova_properties(SimpleNamespace(descriptor=descriptor, disk=descriptor.disks[0]))


DISK = {'file': 'd.vmdk', 'format': 'vmdk', 'size': 10, 'virtual_size': 16 * MIB}


def test_the_ovf_carries_the_properties_back_exactly():
    result = mapped(build_ovf(glance_image(**PROPERTIES), DISK))
    assert {k: result['properties'][k] for k in PROPERTIES} == PROPERTIES
    assert result['min_ram'] == 2048 and result['properties']['imagegov_ovf_cpus'] == '4'
    assert result['name'] == 'gold image'
    for key in ('kernel_id', 'owner_specified.openstack.sha256', 'imagegov_source_sha256'):
        assert key not in result['properties']


def test_the_hardware_alone_maps_back_to_the_same_properties():
    """Without the collection's section (another tool drops it), the descriptor's hardware
    and OS still say firmware, secure boot, bus, NIC and OS."""
    text = build_ovf(glance_image(**PROPERTIES), DISK).decode()
    start, end = text.index('<imagegov:GlanceImageSection'), text.index('</imagegov:GlanceImageSection>')
    result = mapped((text[:start] + text[end + len('</imagegov:GlanceImageSection>') :]).encode())
    hardware = {k: PROPERTIES[k] for k in PROPERTIES if k not in ('hw_qemu_guest_agent', 'description')}
    assert {k: result['properties'].get(k) for k in hardware} == hardware


@pytest.mark.parametrize('distro', sorted(VMWARE_OS_IDS))
def test_each_distro_reads_back_as_itself(distro):
    result = mapped(build_ovf(glance_image(os_distro=distro), DISK).replace(b'GlanceImageSection', b'OtherSection'))
    assert result['properties']['os_distro'] == distro


def test_what_is_not_carried_is_named():
    carried, left = carried_properties(glance_image(**PROPERTIES))
    assert carried == PROPERTIES
    assert left == ['imagegov_ovf_cpus', 'imagegov_source_sha256', 'kernel_id', 'owner_specified.openstack.sha256']
    assert not carried_property('os_glance_importing_to_stores') and not carried_property('img_signature')


def test_a_repeated_section_property_is_refused():
    text = build_ovf(glance_image(hw_qemu_guest_agent='yes'), DISK).decode()
    line = next(line for line in text.splitlines() if 'hw_qemu_guest_agent' in line)
    with pytest.raises(OvaError, match='malformed or repeated'):
        parse_ovf(text.replace(line, line + line).encode(), 'test.ovf')


def test_the_ova_reads_back_through_read_ova(tmp_path):
    disk = tmp_path / 'disk.bin'
    disk.write_bytes(b'disk bytes' * 1000)
    facts = {'sha256': hashlib.sha256(disk.read_bytes()).hexdigest(), 'virtual_size': 16 * MIB}
    ova = tmp_path / 'x.ova'
    with open(ova, 'wb') as out:
        packed = pack_ova(out, glance_image(**PROPERTIES), str(disk), 'qcow2', facts)
    assert packed['sha256'] == hashlib.sha256(ova.read_bytes()).hexdigest()
    with read_ova(str(ova), str(tmp_path)) as bundle:
        assert bundle.manifest == 'gold_image.mf'
        assert bundle.verified == ['gold_image.ovf', 'gold_image-disk1.qcow2']
        assert pathlib.Path(bundle.disk_path).read_bytes() == disk.read_bytes()
        assert bundle.disk.format == 'qcow2' and bundle.disk.capacity == 16 * MIB
    with open(tmp_path / 'y.ova', 'wb') as out:
        assert pack_ova(out, glance_image(**PROPERTIES), str(disk), 'qcow2', facts)['sha256'] == packed['sha256']


def test_a_touched_converted_file_is_hashed_again_not_exported_again(cloud, tmp_path):
    target = tmp_path / 'disk.qcow2'
    _exporter, plan, output = export(cloud, target, convert_to='qcow2')
    assert plan.action == 'download' and output['format'] == 'qcow2' and output['digest']['algo'] == 'sha256'
    os.utime(target, (1, 1))
    again, plan, _output = export(cloud, target, convert_to='qcow2')
    assert plan.action == 'record' and not plan.changed and again.rehashed_seconds is not None
    assert export(cloud, target, convert_to='qcow2')[1].action == 'none'
    assert len(downloads(cloud.glance)) == 1


def test_mode_is_set_on_a_current_file_and_that_is_a_change(cloud, tmp_path):
    target = tmp_path / 'disk.raw'
    export(cloud, target, mode=0o600)
    assert oct(target.stat().st_mode & 0o777) == '0o600'
    _exporter, plan, output = export(cloud, target, mode=0o640)
    assert plan.action == 'none' and plan.chmod and plan.changed and output['mode'] == '0640'
    _exporter, plan, _output = export(cloud, target, mode=0o640)
    assert not plan.changed
    os.chmod(target, 0o604)  # without option mode, the user's own mode is kept
    _exporter, plan, _output = export(cloud, target)
    assert not plan.changed and oct(target.stat().st_mode & 0o777) == '0o604'


def test_a_hardlink_planted_as_part_file_is_refused(cloud, tmp_path):
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(tmp_path / 'disk.raw')), run)
    victim = tmp_path / 'victim'
    victim.write_bytes(b'keep me')
    os.link(victim, exporter.part)
    with pytest.raises(ExportError, match='one link'):
        exporter.apply()
    assert victim.read_bytes() == b'keep me'


def test_a_hostile_section_sets_no_glance_field_link_or_bookkeeping():
    text = build_ovf(glance_image(hw_qemu_guest_agent='yes'), DISK).decode()
    line = next(line for line in text.splitlines() if 'hw_qemu_guest_agent' in line)
    planted = ''.join(
        line.replace('hw_qemu_guest_agent', key).replace('"yes"', '"planted"')
        for key in (
            'kernel_id',
            'os_hash_value',
            'imagegov_source_sha256',
            'owner_specified.openstack.sha256',
            'visibility',
        )
    )
    result = mapped(text.replace(line, line + planted).encode())
    assert result['properties']['hw_qemu_guest_agent'] == 'yes'
    assert 'planted' not in result['properties'].values()


def test_a_whole_part_file_is_verified_and_published_without_a_download(cloud, tmp_path):
    target = tmp_path / 'disk.raw'
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(target)), run)
    with open(exporter.part, 'wb') as part:
        part.write(cloud.data)
    plan, _output = exporter.apply()
    assert plan.action == 'finish' and downloads(cloud.glance) == []
    assert target.read_bytes() == cloud.data and not os.path.exists(exporter.part)


def test_an_ova_export_packs_the_converted_disk(cloud, tmp_path):
    target = tmp_path / 'gold.ova'
    exporter, plan, output = export(cloud, target, container_format='ova')
    assert plan.action == 'download' and output['format'] == 'ova'
    package = exporter.facts['package']
    assert package['disk']['format'] == 'vmdk' and exporter.facts['converted'] == {'from': 'raw', 'to': 'vmdk'}
    with read_ova(str(target), str(tmp_path)) as bundle:
        assert bundle.verified == ['gold.ovf', 'gold-disk1.vmdk'] and bundle.disk.capacity == len(cloud.data)
    assert sorted(os.listdir(tmp_path)) == ['.gold.ova.imagegov-export', 'gold.ova']
    assert export(cloud, target, container_format='ova')[1].action == 'none'


# --- review: attacks on the destination and the package -----------------------------------


def test_another_exports_part_file_whose_name_extends_this_one_is_not_stale(tmp_path):
    # Exporting to "disk" must not remove the part file of an export to "disk.raw" (running
    # at the same time under its own lock): ".disk." is a prefix of ".disk.raw.<id>.<hash>...".
    path = str(tmp_path / 'disk')
    image = {'id': '11111111-2222-3333-4444-555555555555'}
    mine = part_path(path, image, 'a' * 128)
    theirs = part_path(str(tmp_path / 'disk.raw'), image, 'a' * 128)
    stale = part_path(path, {'id': '11111111-2222-3333-4444-666666666666'}, 'b' * 128)
    for name in (mine, theirs, stale):
        open(name, 'wb').close()
    assert stale_parts(path, mine) == [stale]


def test_a_symlink_at_path_is_refused_and_its_target_untouched(cloud, tmp_path):
    # A link planted at path (a shared directory) to a file that holds the image: neither
    # taken as the export nor chmod-ed through.
    victim = tmp_path / 'elsewhere'
    victim.write_bytes(cloud.data)
    victim.chmod(0o600)
    target = tmp_path / 'disk.raw'
    os.symlink(victim, target)
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(target), mode=0o644), run)
    with pytest.raises(ExportError, match='symbolic link'):
        exporter.check_destination()
    with pytest.raises(ExportError, match='symbolic link'):
        exporter.apply()
    assert oct(victim.stat().st_mode & 0o777) == '0o600' and target.is_symlink()


def test_a_file_of_another_user_at_path_is_not_taken_as_the_export(cloud, tmp_path):
    # Another user planted the image's bytes at path: they could change them at will, so the
    # export is made afresh (a new file of this user replaces theirs by a rename).
    target = tmp_path / 'disk.raw'
    target.write_bytes(cloud.data)
    os.chown(target, 65534, 65534)
    _exporter, plan, _output = export(cloud, target)
    assert plan.action == 'download' and target.stat().st_uid == os.geteuid()
    assert target.read_bytes() == cloud.data


def test_a_symlink_planted_as_record_is_not_read(cloud, tmp_path):
    target = tmp_path / 'disk.raw'
    exporter, *_rest = export(cloud, target)
    forged = tmp_path / 'forged'
    os.rename(exporter.record.path, forged)
    os.symlink(forged, exporter.record.path)
    assert exporter.record.read() is None


@pytest.mark.parametrize(
    'key', ['block_device_mapping', 'bdm_v2', 'cinder_encryption_key_id', 'base_image_ref', 'instance_uuid']
)
def test_a_hostile_section_sets_no_link_to_volumes_keys_or_instances(key):
    assert not carried_property(key)
    text = build_ovf(glance_image(hw_qemu_guest_agent='yes'), DISK).decode()
    line = next(line for line in text.splitlines() if 'hw_qemu_guest_agent' in line)
    planted = line.replace('hw_qemu_guest_agent', key).replace('"yes"', '"planted"')
    result = mapped(text.replace(line, line + planted).encode())
    assert key not in result['properties']


@pytest.mark.parametrize('value', [True, -1, 0o10000])
def test_mode_as_a_number_out_of_range_is_refused(value):
    with pytest.raises(ExportError, match='octal'):
        parse_mode(value)


@pytest.mark.parametrize('options', [{}, {'convert_to': 'qcow2'}])
def test_an_image_replaced_under_the_same_name_is_exported_again(cloud, tmp_path, options):
    target = tmp_path / 'disk'
    export(cloud, target, **options)
    new = cloud.glance.add('gold', b'new' + cloud.data[3:], disk_format='raw')
    exporter = Exporter(cloud.glance, new, ExportSpec(str(target), **options), run)
    assert exporter.plan().action == 'download'
    plan, _output = exporter.apply()
    assert plan.action == 'download' and exporter.record.read()['image']['id'] == new['id']
    # The same bytes under a new id: the file is proven by hashing (as stored) or made again.
    same = cloud.glance.add('gold', b'new' + cloud.data[3:], disk_format='raw')
    again = Exporter(cloud.glance, same, ExportSpec(str(target), **options), run)
    assert again.plan().action == ('download' if options else 'record')


def test_a_conversion_on_another_file_system_is_copied_beside_the_file_with_its_holes(tmp_path, monkeypatch):
    from ansible_collections.imagegov.openstack.plugins.module_utils import _export

    source, target = tmp_path / 'scratch.raw', tmp_path / 'disk.raw'
    source.write_bytes(disk_bytes())
    source.chmod(0o640)
    replace = os.replace

    def cross_device(src, dst):
        if str(src) == str(source):
            raise OSError(18, 'Invalid cross-device link')  # EXDEV
        return replace(src, dst)

    monkeypatch.setattr(_export.os, 'replace', cross_device)
    fd = os.open(source, os.O_RDONLY)
    try:
        placed = _export._move(str(source), str(target), fd)
    finally:
        os.close(fd)
    assert target.read_bytes() == disk_bytes() and oct(target.stat().st_mode & 0o777) == '0o640'
    assert target.stat().st_blocks * 512 <= 8 * HOLE_SIZE
    assert placed == (target.stat().st_dev, target.stat().st_ino)
    assert sorted(os.listdir(tmp_path)) == ['disk.raw', 'scratch.raw']


def _plant(path):
    with open(path, 'wb') as planted:
        planted.write(b'planted ' * 4096)


def _swap_after_download(exporter, monkeypatch, make):
    """Another user of a directory anyone may write to replaces the part file by name between
    its verification and its rename."""
    download = exporter._download

    def download_then_swap():
        verified = download()
        os.unlink(exporter.part)
        make(exporter.part)
        return verified

    monkeypatch.setattr(exporter, '_download', download_then_swap)


@pytest.mark.parametrize('options', [{}, {'convert_to': 'raw'}, {'container_format': 'ova', 'convert_to': 'vmdk'}])
def test_a_part_file_swapped_after_its_verification_is_never_published(cloud, tmp_path, monkeypatch, options):
    target = tmp_path / 'disk.raw'
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(target), **options), run)
    _swap_after_download(exporter, monkeypatch, _plant)
    with pytest.raises(ExportError, match='was replaced by another file or a link'):
        exporter.apply()
    assert not target.exists()


def test_a_link_swapped_in_for_the_part_file_has_its_target_neither_published_nor_chmod_ed(
    cloud, tmp_path, monkeypatch
):
    victim = tmp_path / 'private-key'
    victim.write_bytes(b'secret')
    victim.chmod(0o600)
    target = tmp_path / 'disk.raw'
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(target), mode=0o644), run)
    _swap_after_download(exporter, monkeypatch, lambda part: os.symlink(victim, part))
    with pytest.raises(ExportError, match='was replaced by another file or a link'):
        exporter.apply()
    assert not target.exists() and oct(victim.stat().st_mode & 0o777) == '0o600'


def test_a_file_swapped_in_at_path_after_the_rename_is_removed_not_reported(cloud, tmp_path, monkeypatch):
    from ansible_collections.imagegov.openstack.plugins.module_utils import _export

    target = tmp_path / 'disk.raw'
    move = _export._move

    def move_then_swap(source, path, fd):
        placed = move(source, path, fd)
        os.unlink(path)
        _plant(path)
        return placed

    monkeypatch.setattr(_export, '_move', move_then_swap)
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(target)), run)
    with pytest.raises(ExportError, match='was replaced by another file or a link'):
        exporter.apply()
    assert not target.exists()


def test_a_part_file_of_another_user_is_not_removed_as_stale(tmp_path):
    path = str(tmp_path / 'disk')
    mine = part_path(path, {'id': '11111111-2222-3333-4444-555555555555'}, 'a' * 128)
    theirs = part_path(path, {'id': '11111111-2222-3333-4444-666666666666'}, 'b' * 128)
    for name in (mine, theirs):
        open(name, 'wb').close()
    os.chown(theirs, 65534, 65534)
    assert stale_parts(path, mine) == []


@pytest.mark.parametrize(
    ('layout', 'message'),
    [
        ('world-writable', 'anyone may write to it and it has no sticky bit'),
        ('inside a world-writable one', 'anyone may write to it and it has no sticky bit'),
        ("another user's", 'it belongs to uid 65534'),
    ],
)
def test_a_directory_where_another_user_may_replace_files_is_refused_before_anything(cloud, tmp_path, layout, message):
    shared = tmp_path / 'shared'
    shared.mkdir()
    directory = shared
    if layout == 'inside a world-writable one':
        directory = shared / 'mine'
        directory.mkdir()
    if layout == "another user's":
        os.chown(shared, 65534, 65534)
        shared.chmod(0o777 | stat.S_ISVTX)
    else:
        shared.chmod(0o777)
    exporter = Exporter(cloud.glance, cloud.image, ExportSpec(str(directory / 'disk.raw')), run)
    with pytest.raises(ExportError, match=message):
        exporter.apply()
    assert downloads(cloud.glance) == [] and os.listdir(directory) == []


def test_a_sticky_world_writable_directory_is_fine_and_so_is_a_shared_scratch_only_when_converting(cloud, tmp_path):
    sticky = tmp_path / 'sticky'
    sticky.mkdir()
    sticky.chmod(0o777 | stat.S_ISVTX)  # as /tmp: others cannot rename what is not theirs
    export(cloud, sticky / 'disk.raw')
    assert (sticky / 'disk.raw').read_bytes() == cloud.data
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    scratch.chmod(0o777)
    with pytest.raises(ExportError, match='Option scratch_dir: .*no sticky bit'):
        export(cloud, tmp_path / 'disk.qcow2', convert_to='qcow2', scratch_dir=str(scratch))
