"""Writes fixtures/coco/pycocotools-masks.json: masks, RLE counts, compressed strings, areas, bboxes
and polygon rasterisations computed by the reference implementation (pycocotools 2.0.11), so the
TypeScript COCO reader is tested against it byte for byte.

Run with Debian's python (numpy) and pycocotools on the path, e.g.
  /usr/bin/python3 -m pip install --no-deps --no-index --target /tmp/pcc /opt/pypi/files/pycocotools-2.0.11-*.whl
  PYTHONPATH=/tmp/pcc /usr/bin/python3 tools/make_coco_fixture.py
"""
import json
import numpy as np
from pycocotools import mask as cocomask

rng = np.random.default_rng(20240611)


def blob(h, w, n):
    m = np.zeros((h, w), dtype=np.uint8)
    for _ in range(n):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        m[y0:y0 + rng.integers(1, h // 2 + 2), x0:x0 + rng.integers(1, w // 2 + 2)] = 1
    return m


masks = [
    np.zeros((3, 4), dtype=np.uint8),
    np.ones((3, 4), dtype=np.uint8),
    (rng.random((7, 5)) < 0.5).astype(np.uint8),
    (rng.random((13, 17)) < 0.3).astype(np.uint8),
    blob(40, 40, 3),
    blob(64, 48, 5),
    blob(200, 150, 2),  # long runs: multi-character and negative deltas
]
rle_cases = []
for m in masks:
    r = cocomask.encode(np.asfortranarray(m))
    h, w = m.shape
    # uncompressed counts: decode the string through the reference to keep it authoritative
    flat = m.flatten(order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            run, value = 0, v
        run += 1
    counts.append(run)
    rle_cases.append({
        "height": h, "width": w,
        "mask": "".join(str(v) for v in m.flatten(order="C")),
        "counts": [int(c) for c in counts],
        "string": r["counts"].decode("ascii"),
        "area": int(cocomask.area(r)),
        "bbox": [float(v) for v in cocomask.toBbox(r)],
    })
    assert (cocomask.decode(cocomask.frPyObjects({"counts": counts, "size": [h, w]}, h, w)) == m).all()

polygons = [
    (6, 6, [[1.0, 1.0, 4.0, 1.0, 4.0, 4.0, 1.0, 4.0]]),
    (10, 12, [[2.0, 1.0, 9.5, 3.0, 4.0, 8.0]]),
    (16, 16, [[1.2, 1.7, 14.1, 2.3, 13.6, 13.9, 8.0, 6.5, 2.4, 14.8]]),
    (20, 24, [[0.0, 0.0, 5.0, 0.0, 5.0, 5.0, 0.0, 5.0], [10.3, 10.1, 20.7, 12.2, 15.5, 18.9]]),
    (32, 32, [[16.0, 4.0, 28.0, 28.0, 4.0, 28.0]]),
]
poly_cases = []
for h, w, poly in polygons:
    rles = cocomask.frPyObjects(poly, h, w)
    r = cocomask.merge(rles)
    m = cocomask.decode(r)
    poly_cases.append({
        "height": h, "width": w, "polygons": poly,
        "mask": "".join(str(v) for v in m.flatten(order="C")),
        "area": int(cocomask.area(r)),
        "bbox": [float(v) for v in cocomask.toBbox(r)],
    })

with open("fixtures/coco/pycocotools-masks.json", "w") as f:
    json.dump({"generator": "pycocotools 2.0.11 via tools/make_coco_fixture.py",
               "rle": rle_cases, "polygons": poly_cases}, f, separators=(",", ":"))
print(len(rle_cases), "rle cases,", len(poly_cases), "polygon cases")
