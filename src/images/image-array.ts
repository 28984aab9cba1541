/**
 * Image inputs given as arrays: a bare Float32Array, or one tagged with what it holds
 * (`{ pixels }`, `{ data }`). Where a backend cannot tell pixels from its model data by length, the
 * tag decides (`Denoiser.prepare`); results record which it was (`imageIdentity`).
 *
 * @module
 */
import { InvalidImageError } from "../errors.ts";

/**
 * An array that says what it holds: `{ pixels }`, CHW pixels in [−1, 1] at the model's image size
 * (encoded by the model's VAE, if it has one), or `{ data }`, model data of c·h·w values (a latent,
 * as `model.generate` returns and `model.prepare` makes), taken as it is.
 */
export type TaggedArray =
  | { readonly pixels: Float32Array; readonly data?: never }
  | { readonly data: Float32Array; readonly pixels?: never };

/**
 * An image input given as an array, bare or tagged: the array and what it is said to hold
 * ("either" for a bare array); `undefined` for files, bytes and sharp instances.
 *
 * @throws {InvalidImageError} a tag whose value is not a Float32Array, or an object with both tags
 *
 * @example
 * ```ts
 * import { imageArray } from "./image-array.ts";
 * const pixels = new Float32Array(12);
 * console.assert(imageArray({ pixels })?.holds === "pixels" && imageArray(pixels)?.holds === "either");
 * console.assert(imageArray("scene.png") === undefined);
 * ```
 */
export function imageArray(
  image: unknown,
): { readonly array: Float32Array; readonly holds: "pixels" | "data" | "either" } | undefined {
  if (image instanceof Float32Array) return { array: image, holds: "either" };
  if (typeof image !== "object" || image === null || image instanceof Uint8Array) return undefined;
  const tagged = image as Record<string, unknown>;
  if ("toBuffer" in tagged) return undefined; // a sharp instance
  const tags = (["pixels", "data"] as const).filter((key) => key in tagged);
  if (tags.length === 0) return undefined;
  if (tags.length === 2) {
    throw new InvalidImageError(
      "image input has both `pixels` and `data`; expected one: { pixels } for CHW pixels in " +
        "[−1, 1], { data } for model data",
    );
  }
  const array = tagged[tags[0]];
  if (!(array instanceof Float32Array)) {
    throw new InvalidImageError(
      `image input { ${tags[0]} } holds ${
        array === null ? "null" : typeof array
      }; expected a Float32Array`,
    );
  }
  return { array, holds: tags[0] };
}
