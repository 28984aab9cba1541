/**
 * NumPy's `.npy` format (version 1.0) for maps, so `numpy.load("map.npy")` reads a map exactly as
 * infodiff computed it (float32, rows × columns, C order).
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Heatmap } from "./heatmap.ts";

/**
 * A map as `.npy` bytes: the magic string, a header dictionary padded so the data start at a
 * multiple of 64 bytes, then little-endian float32 values row by row.
 *
 * @example
 * ```ts
 * import { heatmapToNpy } from "./npy.ts";
 * import { Heatmap } from "./heatmap.ts";
 * const bytes = heatmapToNpy(new Heatmap(3, 2, new Float32Array([1, 2, 3, 4, 5, 6])));
 * console.assert(bytes.length === 128 + 6 * 4); // the header padded to a multiple of 64 bytes
 * console.assert(new TextDecoder().decode(bytes.subarray(10, 128)).includes("'shape': (2, 3)"));
 * ```
 */
export function heatmapToNpy(map: Heatmap): Uint8Array {
  return arrayToNpy(map.data, [map.height, map.width]);
}

/**
 * Any float32 array as `.npy` bytes of the given shape (C order), e.g. model data [c, h, w].
 *
 * @throws {InvalidArgumentError} when the shape does not hold exactly the values
 *
 * @example
 * ```ts
 * import { arrayToNpy } from "./npy.ts";
 * const bytes = arrayToNpy(new Float32Array(24), [2, 3, 4]);
 * console.assert(new TextDecoder().decode(bytes.subarray(10, 70)).includes("'shape': (2, 3, 4)"));
 * ```
 */
export function arrayToNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  if (shape.reduce((a, b) => a * b, 1) !== data.length) {
    throw new InvalidArgumentError(
      `shape [${shape}] holds ${shape.reduce((a, b) => a * b, 1)} values, the array ${data.length}`,
    );
  }
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const unpadded = 10 + header.length + 1; // magic (6) + version (2) + length (2) + header + "\n"
  header += " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length + data.length * 4);
  out.set([0x93, ...new TextEncoder().encode("NUMPY"), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  const values = new DataView(out.buffer, 10 + header.length);
  data.forEach((v, i) => values.setFloat32(4 * i, v, true));
  return out;
}
