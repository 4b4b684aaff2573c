import pytest

from galaxy_core.data import (
    DATASET_SOURCES,
    DatasetError,
    DatasetSpec,
    DatasetTooLargeError,
    create_dataset,
    describe_spec,
    discover_datasets,
    list_dataset_sources,
    resolve_in_data_roots,
    spec_from_link,
    spec_from_name,
    spec_to_link,
)
from galaxy_core.settings import load_settings
from tests.helpers import write_galaxy10, write_image_folder


def test_sources_in_menu_order_and_unknown_names():
    assert list_dataset_sources() == ["synthetic", "folder", "galaxy10"]
    with pytest.raises(ValueError, match=r"unknown dataset source 'mnist'; known sources: \['folder'"):
        create_dataset("mnist")


def test_unknown_and_mistyped_options_are_named_and_unset_ones_dropped():
    with pytest.raises(ValueError, match=r"does not take 'colour'; it takes \['num_images'"):
        create_dataset("synthetic", colour="red")
    with pytest.raises(ValueError, match=r"num_images must be a int, got '30'"):
        create_dataset("synthetic", num_images="30")
    with pytest.raises(ValueError, match=r"difficulty must be one of \['easy'"):
        create_dataset("synthetic", difficulty="brutal")
    with pytest.raises(ValueError, match=r"dataset source 'folder' needs \['path'\]"):
        create_dataset("folder")
    dataset = create_dataset("synthetic", num_images=30, image_size=16, difficulty=None)
    assert dataset.spec == DatasetSpec.of("synthetic", num_images=30).with_preprocess(image_size=16)
    assert dataset.spec.to_dict() == {
        "name": "synthetic",
        "image_size": 16,
        "crop_fraction": 1.0,
        "channels": 3,
        "num_images": 30,
    }


def test_spec_round_trips_through_its_dict_and_recreates_the_same_dataset():
    dataset = create_dataset("synthetic", num_images=30, image_size=16, seed=2)
    spec = DatasetSpec.from_dict(dataset.spec.to_dict())
    assert spec == dataset.spec and hash(spec) == hash(dataset.spec)
    again = create_dataset(spec)
    assert (again.splits["train"].images == dataset.splits["train"].images).all()
    assert describe_spec(spec) == "synthetic, normal, 16 px, RGB"
    assert spec.with_options(seed=None) == DatasetSpec.of("synthetic", num_images=30).with_preprocess(image_size=16)
    with pytest.raises(ValueError, match="names its source"):
        DatasetSpec.from_dict({"image_size": 32})
    with pytest.raises(ValueError, match="image_size must be a whole number"):
        DatasetSpec.from_dict({"name": "synthetic", "image_size": "big"})


def test_every_source_declares_its_loaders_options_with_their_defaults():
    for source in DATASET_SOURCES.values():
        assert source.title and source.text_help
        for option in source.options:
            if option.default is not None:
                option.check(option.default)  # a default within its own declared type and range
            assert option.flag is None or option.flag.startswith("--")


def test_discovery_offers_folders_galaxy10_and_defaults(isolated_settings, tmp_path, monkeypatch):
    data = isolated_settings["data"]
    write_image_folder(data / "gz-like", {"a": 2, "b": 2}, splits=("train",))
    write_image_folder(data / "flat", {"x": 2, "y": 2})
    (data / "not-a-dataset").mkdir()
    write_galaxy10(data / "Galaxy10.h5", count=10)
    settings_file = tmp_path / "lab.toml"
    settings_file.write_text("[dataset_defaults.gz-like]\ncrop_fraction = 0.4\n")
    monkeypatch.setenv("GALAXY_LAB_SETTINGS", str(settings_file))
    choices = discover_datasets(load_settings())
    labels = [c.label for c in choices]
    assert labels == [
        "synthetic (built in, offline)",
        "flat (folder)",
        "gz-like (folder)",
        "Galaxy10 SDSS (Galaxy10.h5)",
    ]
    assert choices[2].spec.to_dict() == {
        "name": "folder",
        "path": str(data / "gz-like"),
        "image_size": 64,
        "crop_fraction": 0.4,
        "channels": 3,
    }
    assert create_dataset(choices[2].spec.with_preprocess(image_size=16)).preprocess.crop_fraction == 0.4


def test_paths_are_confined_to_the_data_roots(isolated_settings, tmp_path):
    root = isolated_settings["data"]
    write_image_folder(root / "mine", {"a": 2, "b": 2})
    outside = write_image_folder(tmp_path / "secret", {"a": 2, "b": 2})
    (root / "link-out").symlink_to(outside)
    roots = (root,)
    assert resolve_in_data_roots("mine", roots) == root / "mine"
    assert resolve_in_data_roots(str(root / "mine"), roots) == root / "mine"
    for escape in ["../secret", "mine/../../secret", str(outside), "link-out", "/etc"]:
        with pytest.raises(DatasetError, match="outside the data roots"):
            resolve_in_data_roots(escape, roots)
    with pytest.raises(DatasetError, match=r"is not in the lab.s data folders"):
        resolve_in_data_roots("missing", roots)
    with pytest.raises(DatasetError, match="no data roots are configured"):
        resolve_in_data_roots("mine", ())


def test_names_typed_in_a_terminal(isolated_settings, tmp_path):
    settings = load_settings()
    write_image_folder(isolated_settings["data"] / "mine", {"a": 2, "b": 2})
    assert spec_from_name("synthetic", settings) == DatasetSpec.of("synthetic")
    assert spec_from_name("mine", settings) == DatasetSpec.of("folder", path=str(isolated_settings["data"] / "mine"))
    h5 = write_galaxy10(tmp_path / "any.h5", count=10)
    assert spec_from_name(str(h5), settings) == DatasetSpec.of("galaxy10", path=str(h5))
    with pytest.raises(DatasetError, match="galaxy-lab download decals"):
        spec_from_name("galaxy10-decals", settings)
    with pytest.raises(DatasetError, match="'nothing-here' is none of: 'synthetic'; a folder of class folders"):
        spec_from_name("nothing-here", settings)


def test_a_link_carries_a_spec_and_cannot_point_outside_the_data_roots(isolated_settings, tmp_path):
    settings = load_settings()
    mine = write_image_folder(isolated_settings["data"] / "mine", {"a": 2, "b": 2})
    spec = DatasetSpec.of("folder", path=str(mine), seed=3).with_preprocess(image_size=32, crop_fraction=0.5)
    assert spec_from_link(spec_to_link(spec), settings) == spec
    assert spec_from_link(spec_to_link(DatasetSpec.of("synthetic")), settings) == DatasetSpec.of("synthetic")
    outside = write_image_folder(tmp_path / "secret", {"a": 2, "b": 2})
    for path in (str(outside), str(mine / ".." / ".." / "secret"), "/etc"):
        with pytest.raises(DatasetError, match="outside the data roots"):
            spec_from_link(spec_to_link(DatasetSpec.of("folder", path=path)), settings)
    for text, message in [
        ("{not json", "not a dataset description"),
        ('{"name": "mnist"}', "unknown dataset source 'mnist'"),
        ('{"name": "synthetic", "num_images": "all"}', "num_images must be a int"),
    ]:
        with pytest.raises(ValueError, match=message):
            spec_from_link(text, settings)


def test_a_dataset_over_the_memory_budget_is_refused_before_anything_is_allocated(isolated_settings):
    """The link the class issue measured (100,000 synthetic galaxies at 512 px: 73 GiB) and a folder and a Galaxy10
    file too large for a small budget are each refused with the figure and the limit, and nothing is decoded."""
    import tracemalloc

    settings = load_settings()
    huge = DatasetSpec.of("synthetic", num_images=100_000).with_preprocess(image_size=512)
    # By hand: 512 px renders (the crop is 1) and the same size preprocessed, 3 bytes a pixel.
    needed = 100_000 * 2 * 512 * 512 * 3
    tracemalloc.start()
    try:
        with pytest.raises(DatasetTooLargeError) as refused:
            spec_from_link(spec_to_link(huge), settings)
        with pytest.raises(DatasetTooLargeError):
            create_dataset(huge, memory_limit_mb=settings.dataset_memory_mb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"{peak:,} bytes allocated to refuse it"
    assert f"would take {needed / 1e6:,.0f} MB of memory to load" in str(refused.value)
    assert "above this server's limit of 2,048 MB (dataset_memory_mb)" in str(refused.value)
    folder = write_image_folder(isolated_settings["data"] / "mine", {"a": 5, "b": 5})
    big_folder = DatasetSpec.of("folder", path=str(folder)).with_preprocess(image_size=512)  # 10 x 0.79 MB
    with pytest.raises(DatasetTooLargeError, match="would take 8 MB of memory"):
        create_dataset(big_folder, memory_limit_mb=7)
    assert create_dataset(big_folder, memory_limit_mb=8).splits["train"].images.shape[1:] == (512, 512, 3)
    h5 = write_galaxy10(isolated_settings["data"] / "Galaxy10.h5", count=40)
    ten = DatasetSpec.of("galaxy10", path=str(h5)).with_preprocess(image_size=256, channels=1)  # 40 x 65,536 bytes
    with pytest.raises(DatasetTooLargeError, match="would take 3 MB"):
        create_dataset(ten, memory_limit_mb=2)
