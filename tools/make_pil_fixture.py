"""Writes fixtures/images/pil-resize.json: images resized by Pillow 10.0.0 (the reference's
`Pillow>=10.0.0`, the version of its time), the truth for src/images/pil-resize.ts, which
tests/geometry.test.ts checks byte for byte.

- `nearest`: index images (mode "I", value = source column) resized with Image.NEAREST, as the
  reference resizes COCO masks (utils/utils.py:133), giving the source column of every output
  column, for the issue's 10 -> 8, sizes where a position falls exactly on a pixel edge, and
  COCO's sizes to 512; and one 2-D mode "L" mask (the reference's mask mode) made of distinct
  values, resized both ways.
- `resample`: one RGB image with smooth ramps and a sharp box, resized with BILINEAR (localization,
  utils/utils.py:132), BICUBIC (ARO, scripts/eval_retrieval.py:64-67 through torchvision, which calls
  PIL for PIL images) and LANCZOS (the intervention, diffusers 0.20.0 VaeImageProcessor.resize),
  shrinking, enlarging and both at once (pixels as base64 bytes, row by row, RGB interleaved).

Run with Pillow 10.0.0 and numpy, e.g.
  python3 -m venv /tmp/pil10 && /tmp/pil10/bin/pip install pillow==10.0.0 numpy
  /tmp/pil10/bin/python tools/make_pil_fixture.py
"""
import base64
import json

import numpy as np
import PIL
from PIL import Image

assert PIL.__version__ == "10.0.0", PIL.__version__


def b64(pixels):
    """uint8 pixels, row by row, interleaved, as base64."""
    return base64.b64encode(pixels.astype(np.uint8).tobytes()).decode()


def nearest_columns(n_in, n_out):
    row = Image.fromarray(np.arange(n_in, dtype=np.int32)[None, :])
    return np.array(row.resize((n_out, 1), Image.NEAREST))[0].tolist()


columns = [
    {"in": n_in, "out": n_out, "columns": nearest_columns(n_in, n_out)}
    for n_in, n_out in [(10, 8), (2, 7), (6, 9), (3, 11), (640, 512), (427, 512), (480, 512)]
]

# a 2-D mask of distinct values (so each output names its source pixel), 17 wide, 13 high
mask = (np.arange(13 * 17).reshape(13, 17) % 251).astype(np.uint8)
masks = []
for out_w, out_h in [(8, 8), (40, 29), (5, 20)]:
    out = np.array(Image.fromarray(mask, mode="L").resize((out_w, out_h), Image.NEAREST))
    masks.append({"width": out_w, "height": out_h, "values": out.flatten().tolist()})

h, w = 12, 20
yy, xx = np.mgrid[0:h, 0:w]
rgb = np.stack(
    [xx * 255 / (w - 1), yy * 255 / (h - 1), 128 + 100 * np.sin(xx / 2.0) * np.cos(yy / 3.0)], -1
)
rgb[3:7, 4:9] = [250, 20, 40]
rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
resampled = []
# shrinking, enlarging, one of each, one axis only, and a height shrunk more than twice the width
# (Pillow 11+ would run its vertical pass first there)
for out_w, out_h in [(8, 6), (26, 15), (12, 16), (20, 5), (7, 12), (18, 4)]:
    for name, flag in filters.items():
        out = np.array(Image.fromarray(rgb).resize((out_w, out_h), flag))
        resampled.append(
            {"filter": name, "width": out_w, "height": out_h, "pixels": b64(out)}
        )

fixture = {
    "pillow": PIL.__version__,
    "nearest": {
        "columns": columns,
        "mask": {"width": 17, "height": 13, "values": mask.flatten().tolist()},
        "masks": masks,
    },
    "resample": {"width": w, "height": h, "pixels": b64(rgb), "outputs": resampled},
}
with open("fixtures/images/pil-resize.json", "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
    f.write("\n")
