"""Folders written whole: classification patches are built beside the dataset's folder and swapped in."""

from __future__ import annotations

import os

import pytest

from deepscores.formats.atomic import TMP_PREFIX, remove_temp_files, staged_folder, write_new_file
from deepscores.formats.deepscores_xml import read_page_xml
from deepscores.formats.patches import select_patches, write_patches
from tests.test_formats import CATALOGUE, tiny_pages, write_pages


def test_staged_folder_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with staged_folder(target) as staging:
        write_new_file(str(staging / "new.txt"), b"new")
        assert sorted(p.name for p in target.iterdir()) == ["old.txt"]  # readers still see the old folder
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert (target / "new.txt").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # nothing left beside it


def test_a_failed_staged_folder_leaves_the_old_one(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with staged_folder(target) as staging:
            write_new_file(str(staging / "new.txt"), b"new")
            raise RuntimeError("a patch could not be cut")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert (target / "old.txt").read_text() == "old" and not (target / "new.txt").exists()


def test_write_new_file_never_overwrites(tmp_path):
    write_new_file(str(tmp_path / "a"), b"1")
    with pytest.raises(FileExistsError):
        write_new_file(str(tmp_path / "a"), b"2")
    assert (tmp_path / "a").read_bytes() == b"1"


def test_a_new_selection_leaves_exactly_its_own_patches(tmp_path):
    pages = tiny_pages()
    write_pages(tmp_path, pages)
    records = [(name, read_page_xml(tmp_path / "xml_annotations" / f"{name}.xml")) for name, _ in pages]
    data = tmp_path / "classification_data"
    write_patches(tmp_path, select_patches(records, 3, seed=1), CATALOGUE, 1, 3)
    (data / "notes.txt").write_text("a file of the user's")
    smaller = select_patches(records, 1, seed=2)
    write_patches(tmp_path, smaller, CATALOGUE, 2, 1)
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    expected = sorted(f"{cls}/{page}_{iid}.png" for page, items in smaller.items() for iid, cls in items)
    assert files == sorted(expected + ["class_names.csv", "config.txt"])
    assert f"patches={len(expected)}\n" in (data / "config.txt").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_what_a_killed_writer_left_is_removed(tmp_path):
    (tmp_path / f"{TMP_PREFIX}classification_data.123.abcd" / "gClef").mkdir(parents=True)
    (tmp_path / f"{TMP_PREFIX}classification_data.123.abcd" / "gClef" / "p_1.png").write_bytes(b"x")
    (tmp_path / f"{TMP_PREFIX}manifest.jsonl.123.abcd").write_text("torn")
    (tmp_path / "classification_data").mkdir()
    os.symlink(tmp_path / "classification_data", tmp_path / f"{TMP_PREFIX}link")
    remove_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classification_data"]


def test_a_linked_folder_is_replaced_by_a_real_one_and_its_target_kept(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "kept.txt").write_text("theirs")
    target = tmp_path / "data"
    target.symlink_to(elsewhere)
    with staged_folder(target) as staging:
        write_new_file(str(staging / "new.txt"), b"new")
    assert not target.is_symlink() and sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert (elsewhere / "kept.txt").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "elsewhere"]
