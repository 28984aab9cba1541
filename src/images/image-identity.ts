/**
 * Which image a result is about: its path and a SHA-256 of its content (file bytes, encoded
 * bytes, or model data), recorded in every result's provenance.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { InvalidImageError } from "../errors.ts";
import { imageArray } from "./image-array.ts";

/** An image's identity. */
export interface ImageIdentity {
  /** how the image was given */
  readonly kind: "file" | "bytes" | "data" | "pixels" | "pipeline";
  /** the file path, for files */
  readonly path?: string;
  /** SHA-256 (hex) of the content; empty for a decoder pipeline, whose content is not at hand */
  readonly sha256: string;
}

/**
 * The identity of an image input: a path (the file's bytes are hashed), encoded bytes, model data
 * (a Float32Array, or `{ data }`), pixels (`{ pixels }`), or a decoder pipeline (not hashed).
 *
 * @throws {InvalidImageError} when a path cannot be read
 *
 * @example
 * ```ts
 * import { imageIdentity } from "./image-identity.ts";
 * const id = await imageIdentity(new Float32Array([0, 1]));
 * console.assert(id.kind === "data" && id.sha256.length === 64);
 * ```
 */
export async function imageIdentity(image: unknown): Promise<ImageIdentity> {
  const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
  if (typeof image === "string") {
    const bytes = await Deno.readFile(image).catch((error) => {
      throw new InvalidImageError(`cannot read image ${image} to identify it`, { cause: error });
    });
    return { kind: "file", path: image, sha256: sha256(bytes) };
  }
  const given = imageArray(image);
  if (given) {
    const { array, holds } = given;
    return {
      kind: holds === "pixels" ? "pixels" : "data", // a bare array: model data, as before tags
      sha256: sha256(new Uint8Array(array.buffer, array.byteOffset, array.byteLength)),
    };
  }
  if (image instanceof Uint8Array) return { kind: "bytes", sha256: sha256(image) };
  return { kind: "pipeline", sha256: "" };
}

/**
 * The content hash of an image input for a study record, or "" when it has none that can be read
 * (a label handed to a custom loader, a decoder pipeline).
 *
 * @example
 * ```ts
 * import { imageSha256 } from "./image-identity.ts";
 * console.assert((await imageSha256("no such file.png")) === "");
 * ```
 */
export async function imageSha256(image: unknown): Promise<string> {
  try {
    return (await imageIdentity(image)).sha256;
  } catch {
    return "";
  }
}
