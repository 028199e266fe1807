import numpy as np
import pytest
import torch

from conftest import write_cifar_folder
from hfcifar.data import (
    BatchAugmentation,
    CifarTensorDataset,
    DatasetSchemaError,
    DatasetUnavailableError,
    cutout,
    eval_split_name,
    load_cifar10,
    random_crop,
    random_flip,
)


def test_load_mini_carves_stratified_validation(mini_path):
    data = load_cifar10(mini_path)
    assert set(data) == {"train", "validation"}
    assert len(data["train"]) + len(data["validation"]) == 4660
    assert len(data["validation"]) == 466
    counts = np.bincount(data["validation"]["label"][:], minlength=10)
    # stratified: every class keeps ~10% of its 435–489 images
    assert counts.min() >= 43 and counts.max() <= 49
    again = load_cifar10(mini_path)
    assert again["validation"]["label"][:] == data["validation"]["label"][:]
    assert eval_split_name(data) == "validation"


def test_held_out_images_are_disjoint_from_train(mini_path):
    data = load_cifar10(mini_path)
    train = CifarTensorDataset.from_hf(data["train"], progress=False)
    held = CifarTensorDataset.from_hf(data["validation"], progress=False)
    train_keys = {hash(img.numpy().tobytes()) for img in train.images}
    assert not any(hash(img.numpy().tobytes()) in train_keys for img in held.images)


def test_test_split_is_used_when_present(tmp_path):
    path = write_cifar_folder(tmp_path / "with_test", n=60, test=True)
    data = load_cifar10(path)
    assert set(data) == {"train", "test"} and eval_split_name(data) == "test"
    assert set(load_cifar10(path, validation_size=0.2)) == {"train", "validation", "test"}


def test_environment_variable_is_the_default_source(synthetic_path, monkeypatch):
    monkeypatch.setenv("HFCIFAR_DATASET", synthetic_path)
    assert len(load_cifar10()["train"]) == 108


def test_offline_hub_names_both_fixes(monkeypatch):
    monkeypatch.delenv("HFCIFAR_DATASET", raising=False)
    with pytest.raises(DatasetUnavailableError) as error:
        load_cifar10("uoft-cs/cifar10")
    assert "--dataset PATH" in str(error.value) and "HFCIFAR_DATASET" in str(error.value)


def test_missing_folder_is_reported():
    with pytest.raises(DatasetUnavailableError, match="no-such-folder"):
        load_cifar10("./no-such-folder/cifar")


def test_missing_column_is_reported(tmp_path):
    path = write_cifar_folder(tmp_path / "bad", n=20, columns=("image", "label"))
    with pytest.raises(DatasetSchemaError, match="img"):
        load_cifar10(path)


def test_labels_outside_the_classes_are_reported(tmp_path):
    path = write_cifar_folder(tmp_path / "bad", n=20, labels=[0] * 19 + [12])
    with pytest.raises(DatasetSchemaError, match=r"\[0, 12\]"):
        load_cifar10(path)


def test_tensor_dataset_serves_whole_batches(synthetic_path):
    data = load_cifar10(synthetic_path)
    ds = CifarTensorDataset.from_hf(data["train"], progress=False)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (108, 3, 32, 32)
    batch = ds.__getitems__([3, 1, 4])
    assert batch["pixel_values"].shape == (3, 3, 32, 32)
    assert torch.equal(batch["pixel_values"][1], ds.images[1]) and batch["labels"].tolist() == ds.labels[[3, 1, 4]].tolist()
    first = np.array(data["train"][0]["img"], dtype=np.uint8)
    assert torch.equal(ds.images[0], torch.from_numpy(first).permute(2, 0, 1))


def test_random_crop_is_a_shift_of_the_reflect_padded_image():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    padded = torch.nn.functional.pad(images.float(), (2, 2, 2, 2), mode="reflect").to(torch.uint8)
    crops = random_crop(images, 2)
    shifts = set()
    for i in range(16):
        matches = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(crops[i], padded[i, :, dy : dy + 32, dx : dx + 32])]
        assert matches, "every crop must be a 32×32 window of the padded image"
        shifts.add(matches[0])
    assert len(shifts) > 3, "crops must be independent per image"
    assert torch.equal(random_crop(images, 0), images)


def test_flip_mirrors_about_half_of_the_images():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (400, 3, 8, 8), dtype=torch.uint8)
    out = random_flip(images)
    mirrored = (out == images.flip(-1)).flatten(1).all(1)
    same = (out == images).flatten(1).all(1)
    assert bool((mirrored | same).all()) and 150 < int(mirrored.sum()) < 250


def test_cutout_fills_one_square_per_image():
    torch.manual_seed(0)
    images = torch.ones(64, 3, 32, 32)
    out = cutout(images, 8, fill=0.0)
    filled = (out == 0).all(1).flatten(1).sum(1)
    assert int(filled.max()) == 64 and int(filled.min()) > 0  # a whole 8×8 square, or its part inside the image


def test_batch_augmentation_returns_float_images_in_unit_range():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    out = BatchAugmentation(cutout_size=8)(images)
    assert out.dtype == torch.float32 and out.shape == images.shape and 0 <= out.min() and out.max() <= 1
