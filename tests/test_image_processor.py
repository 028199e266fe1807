import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor, pipeline

from hfcifar import CifarImageProcessor, create_model


def test_processor_keeps_32px_rgb_images_exact():
    array = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pixels = CifarImageProcessor()(Image.fromarray(array), return_tensors="pt")["pixel_values"]
    assert pixels.dtype == torch.float32 and pixels.shape == (1, 3, 32, 32)
    assert torch.equal(pixels[0], torch.from_numpy(array).permute(2, 0, 1).float() / 255)


def test_processor_accepts_any_size_and_mode():
    processor = CifarImageProcessor()
    images = [Image.new("L", (64, 48), 128), Image.new("RGBA", (20, 20)), Image.new("P", (33, 31)),
              np.zeros((40, 40, 3), dtype=np.uint8), torch.zeros(3, 32, 32, dtype=torch.uint8)]
    pixels = processor(images, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (5, 3, 32, 32) and 0 <= pixels.min() and pixels.max() <= 1


def test_pipeline_works_out_of_the_box(tmp_path):
    model = create_model("fastnet-tiny")
    model.save_pretrained(tmp_path)
    CifarImageProcessor().save_pretrained(tmp_path)
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), CifarImageProcessor)
    classify = pipeline("image-classification", model=str(tmp_path))
    out = classify([Image.new("RGB", (100, 80), "red"), Image.new("L", (32, 32))], top_k=3)
    assert len(out) == 2 and len(out[0]) == 3
    names = set(model.config.id2label.values())
    assert {p["label"] for preds in out for p in preds} <= names and "airplane" in names
    assert abs(sum(p["score"] for p in classify(Image.new("RGB", (32, 32)), top_k=10)) - 1) < 1e-4
