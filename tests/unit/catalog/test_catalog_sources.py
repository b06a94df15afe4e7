"""Where image files may come from: inside the catalog's repository, or inside source_roots.

fixtures/sources/expected.yml lists the exact problems of each catalog there. The trees are
copied into a temporary directory (@TMP@ in the files and messages), where the test makes
what Git cannot carry: the `.git` marker, symlinks, a FIFO.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from ansible_collections.imagegov.openstack.plugins.module_utils import catalog

SOURCES = Path(__file__).resolve().parent / 'fixtures' / 'sources'
EXPECTED = yaml.safe_load((SOURCES / 'expected.yml').read_text(encoding='utf-8'))
SHA = '0cf457e24a479f02fd4d34540389f720f0807dcff92a7562108165b2637ea82f'
FIX = 'move the image into the catalog repository, or allow its directory with option source_roots'


def _in_a_repository(path: Path) -> bool:
    return any((parent / '.git').exists() for parent in [path, *path.parents])


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """@TMP@: repo/ (a Git repository), plain/ (none), outside/disk.qcow2; the fixtures copied in."""
    tmp = tmp_path.resolve()
    if _in_a_repository(tmp):
        pytest.skip(f'{tmp} is inside a Git repository; these tests need a temporary directory outside one')
    for part in ('repo', 'plain'):
        shutil.copytree(SOURCES / part, tmp / part)
    for path in tmp.rglob('*.yml'):
        path.write_text(path.read_text(encoding='utf-8').replace('@TMP@', str(tmp)), encoding='utf-8')
    (tmp / 'repo' / '.git').mkdir()
    (tmp / 'outside').mkdir()
    (tmp / 'outside' / 'disk.qcow2').write_bytes(b'outside')
    (tmp / 'repo' / 'images').mkdir()
    (tmp / 'repo' / 'images' / 'up.qcow2').write_bytes(b'up')
    images = tmp / 'repo' / 'catalog' / 'images'
    images.mkdir()
    (images / 'disk.qcow2').write_bytes(b'disk')
    (images / 'link.qcow2').symlink_to(tmp / 'outside' / 'disk.qcow2')
    (images / 'outside-dir').symlink_to(tmp / 'outside', target_is_directory=True)
    os.mkfifo(images / 'pipe')
    (tmp / 'repo' / 'good' / 'images').mkdir()
    (tmp / 'repo' / 'good' / 'images' / 'inner-link.qcow2').symlink_to(Path('..', '..', 'images', 'up.qcow2'))
    return tmp


def _expected(name: str, tmp: Path) -> list[str]:
    return [message.replace('@TMP@', str(tmp)) for message in EXPECTED[name]]


def _load_problems(path: Path, monkeypatch, **options) -> list[str]:
    monkeypatch.chdir(path.parent)
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog(path.name, **options)
    return raised.value.messages


def test_every_sources_fixture_has_expectations():
    fixtures = sorted(
        str(path.relative_to(SOURCES))
        for path in SOURCES.rglob('*.yml')
        if path.name != 'expected.yml' and path.parent.name != 'good'
    )
    assert fixtures == sorted(EXPECTED)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_source_outside_its_root_is_refused_exactly(name, tree, monkeypatch):
    assert _load_problems(tree / name, monkeypatch) == _expected(name, tree)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_each_problem_names_file_line_image_field_and_fix(name):
    (message,) = EXPECTED[name]
    assert message.startswith(f'{Path(name).name}:')
    assert " (images[0]): field '" in message and "source.file': " in message
    assert message.endswith(('; give an image file', 'or allow its directory with option source_roots'))


def test_confinement_holds_without_check_files(tree, monkeypatch):
    # check_files=False skips existence checks, never the check of where a file is
    for name in (
        'repo/catalog/01_absolute_outside.yml',
        'repo/catalog/02_dotdot_escape.yml',
        'repo/catalog/03_symlink_out.yml',
        'repo/catalog/06_outside_missing.yml',
    ):
        assert _load_problems(tree / name, monkeypatch, check_files=False) == _expected(name, tree)
    monkeypatch.chdir(tree / 'repo' / 'catalog')
    loaded = catalog.load_catalog('04_fifo.yml', check_files=False)
    assert loaded.images[0].source == {'file': str(tree / 'repo' / 'catalog' / 'images' / 'pipe')}


def test_inside_the_repository_loads_with_files_resolved(tree, monkeypatch):
    monkeypatch.chdir(tree / 'repo' / 'good')
    loaded = catalog.load_catalog('inside.yml')
    up = str(tree / 'repo' / 'images' / 'up.qcow2')
    assert [image.source for image in loaded.images] == [
        {'file': up},
        {'file': up},
        {'file': up},  # the symlink inside the repository is followed
        {'url': 'https://images.example.org/gold/cirros.qcow2'},
    ]


def test_source_roots_allow_a_directory_outside(tree, monkeypatch):
    outside = str(tree / 'outside' / 'disk.qcow2')
    for name in ('01_absolute_outside.yml', '02_dotdot_escape.yml', '03_symlink_out.yml', '07_symlinked_directory.yml'):
        monkeypatch.chdir(tree / 'repo' / 'catalog')
        loaded = catalog.load_catalog(name, source_roots=[tree / 'outside'])
        assert loaded.images[0].source == {'file': outside}, name
    texts = [('09_no_repository.yml', (tree / 'plain' / '09_no_repository.yml').read_text(encoding='utf-8'))]
    monkeypatch.chdir(tree / 'plain')
    assert catalog.load_catalog_texts(texts, source_roots=[str(tree / 'outside')]).images[0].source == {'file': outside}
    # a root given relative is taken from the current directory; missing files inside it are still missing
    assert _load_problems(
        tree / 'repo' / 'catalog' / '06_outside_missing.yml', monkeypatch, source_roots=['../../outside']
    ) == [
        "06_outside_missing.yml:4: image 'cirros' (images[0]): field 'source.file': no such file "
        f"'{tree}/outside/no-such.qcow2'"
    ]


def test_source_roots_are_named_when_the_file_is_in_none_of_them(tree, monkeypatch):
    assert _load_problems(
        tree / 'repo' / 'catalog' / '02_dotdot_escape.yml', monkeypatch, source_roots=[tree / 'plain', '/srv/images']
    ) == [
        "02_dotdot_escape.yml:3: image 'cirros' (images[0]): field 'source.file': '../../outside/disk.qcow2' "
        f"resolves to '{tree}/outside/disk.qcow2', outside the catalog repository '{tree}/repo' and the "
        f"source_roots '{tree}/plain', '/srv/images'; {FIX}"
    ]


def test_a_source_root_does_not_make_a_fifo_or_device_readable(tree, monkeypatch):
    catalog_dir = tree / 'repo' / 'catalog'
    (catalog_dir / 'images' / 'null').symlink_to('/dev/null')
    text = f'version: 1\nimages:\n  - {{name: n, source: {{file: images/null}}, sha256: {SHA}, disk_format: raw}}\n'
    monkeypatch.chdir(catalog_dir)
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog_texts([('null.yml', text)])
    assert raised.value.messages == [
        "null.yml:3: image 'n' (images[0]): field 'source.file': 'images/null' resolves to '/dev/null', "
        f"outside the catalog repository '{tree}/repo'; {FIX}"
    ]
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog_texts([('null.yml', text)], source_roots=['/dev'])
    assert raised.value.messages == [
        "null.yml:3: image 'n' (images[0]): field 'source.file': 'images/null' (relative to the catalog file's "
        'directory) is a character device, not a regular file; give an image file'
    ]


def test_the_nearest_git_marker_is_the_root_even_a_file(tree, monkeypatch):
    # A worktree or a submodule has a .git file, not a directory: still a repository root.
    worktree = tree / 'plain' / 'worktree'
    (worktree / 'catalog').mkdir(parents=True)
    (worktree / 'images').mkdir()
    (worktree / 'images' / 'w.qcow2').write_bytes(b'w')
    text = (
        f'version: 1\nimages:\n  - {{name: w, source: {{file: ../images/w.qcow2}}, sha256: {SHA}, disk_format: raw}}\n'
    )
    (worktree / 'catalog' / 'w.yml').write_text(text, encoding='utf-8')
    monkeypatch.chdir(worktree / 'catalog')
    with pytest.raises(catalog.CatalogError) as raised:  # no .git yet: the catalog's own directory
        catalog.load_catalog('w.yml')
    assert raised.value.messages == [
        "w.yml:3: image 'w' (images[0]): field 'source.file': '../images/w.qcow2' resolves to "
        f"'{worktree}/images/w.qcow2', outside the catalog file's directory '{worktree}/catalog' (no .git above it); "
        "move the image into the catalog file's directory, or allow its directory with option source_roots"
    ]
    (worktree / '.git').write_text('gitdir: /elsewhere/.git/worktrees/w\n', encoding='utf-8')
    assert catalog.load_catalog('w.yml').images[0].source == {'file': str(worktree / 'images' / 'w.qcow2')}
    # the nearest marker wins: a repository nested in another one confines to the inner one
    (worktree / 'catalog' / '.git').mkdir()
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog('w.yml')
    assert f"outside the catalog repository '{worktree}/catalog'; {FIX}" in raised.value.messages[0]


def test_a_directory_argument_is_the_root_outside_a_repository(tree, monkeypatch):
    monkeypatch.chdir(tree)
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog(['plain'])
    assert raised.value.messages == [f'plain/{message}' for message in _expected('plain/09_no_repository.yml', tree)]
    monkeypatch.chdir(tree / 'repo')
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog(['catalog'])
    refused = [message for message in raised.value.messages if "field 'name'" not in message]  # all are 'cirros'
    assert refused == [
        f'catalog/{message}'
        for name in sorted(EXPECTED)
        if name.startswith('repo/')
        for message in _expected(name, tree)
    ]


def test_a_nul_character_is_refused():
    text = f'version: 1\nimages:\n  - {{name: n, source: {{file: "a\\0b"}}, sha256: {SHA}, disk_format: raw}}\n'
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog_texts([('nul.yml', text)])
    assert raised.value.messages == [
        "nul.yml:3: image 'n' (images[0]): field 'source.file': must not contain a NUL character"
    ]
