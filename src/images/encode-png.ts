/**
 * A minimal synchronous PNG encoder (8-bit RGB, no interlace, filter 0) built on `node:zlib`.
 *
 * Jupyter's display hook must return its MIME bundle synchronously, and sharp only encodes
 * asynchronously, so {@link Heatmap}'s notebook display uses this encoder instead.
 *
 * @module
 */
import { deflateSync } from "node:zlib";
import { InvalidArgumentError } from "../errors.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** CRC-32 (polynomial 0xEDB88320) lookup table, as the PNG specification defines it. */
const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32 of `bytes`, as used in PNG chunk trailers.
 *
 * @example
 * ```ts
 * import { crc32 } from "./encode-png.ts";
 * console.assert(crc32(new TextEncoder().encode("IEND")) === 0xae426082);
 * ```
 */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk: length, type, data, CRC over type + data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encodes 8-bit interleaved RGB pixels (row-major, `width·height·3` bytes) as a PNG file.
 *
 * @param rgb pixel bytes, R G B per pixel, rows top to bottom
 * @param width image width in pixels (positive integer)
 * @param height image height in pixels (positive integer)
 * @returns the PNG file bytes
 * @throws {InvalidArgumentError} when the sizes are not positive integers or `rgb` has the wrong length
 *
 * @example
 * ```ts
 * import { encodePng } from "./encode-png.ts";
 * const png = encodePng(new Uint8Array([255, 0, 0, 0, 0, 255]), 2, 1);
 * console.assert(png[1] === 0x50 && png[2] === 0x4e && png[3] === 0x47); // "PNG"
 * ```
 */
export function encodePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  if (!Number.isInteger(width) || width <= 0 || !Number.isInteger(height) || height <= 0) {
    throw new InvalidArgumentError(
      `PNG size must be positive integers, got width=${width}, height=${height}`,
    );
  }
  if (rgb.length !== width * height * 3) {
    throw new InvalidArgumentError(
      `RGB data has ${rgb.length} bytes, expected width·height·3 = ${width * height * 3}`,
    );
  }
  const header = new Uint8Array(13);
  const headerView = new DataView(header.buffer);
  headerView.setUint32(0, width);
  headerView.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
  const stride = width * 3;
  const raw = new Uint8Array((stride + 1) * height); // each row: filter byte 0 (None) + pixels
  for (let y = 0; y < height; y++) {
    raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const parts = [
    Uint8Array.from(PNG_SIGNATURE),
    chunk("IHDR", header),
    chunk("IDAT", new Uint8Array(deflateSync(raw))),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
