/**
 * Item ids derived from what an item is, not where it sits in a list: a results file keyed by
 * them can never hand one item's result to another when items are reordered, dropped or added.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import { imageArray } from "../images/image-array.ts";

/** What an id can be made of. */
export type IdPart =
  | string
  | number
  | boolean
  | null
  | undefined
  | ArrayBufferView
  | readonly IdPart[];

/**
 * `readable#hash`: a short readable label and a 64-bit FNV-1a hash (16 hex digits) of every part,
 * each part typed and length-prefixed so that ("ab", "c") and ("a", "bc") differ.
 *
 * @example
 * ```ts
 * import { contentId } from "./content-id.ts";
 * const a = contentId("1.png:red", "1.png", "a red circle", "red");
 * console.assert(a === contentId("1.png:red", "1.png", "a red circle", "red"));
 * console.assert(a !== contentId("1.png:red", "2.png", "a red circle", "red"));
 * console.assert(a.startsWith("1.png:red#") && a.length === "1.png:red#".length + 16);
 * ```
 */
export function contentId(readable: string, ...parts: readonly IdPart[]): string {
  const hash = new Fnv64();
  for (const part of parts) hash.part(part);
  const label = readable.length > 80 ? `${readable.slice(0, 77)}...` : readable;
  return `${label}#${hash.hex()}`;
}

/**
 * Content ids made unique by order of appearance: the k-th identical copy of an item (k ≥ 2)
 * gets `~k`. Identical items give identical results, so their order cannot swap anything.
 *
 * @example
 * ```ts
 * import { numberRepeats } from "./content-id.ts";
 * console.assert(numberRepeats(["a", "b", "a"]).join() === "a,b,a~2");
 * ```
 */
export function numberRepeats(ids: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return ids.map((id) => {
    const count = (seen.get(id) ?? 0) + 1;
    seen.set(id, count);
    return count === 1 ? id : `${id}~${count}`;
  });
}

/**
 * Items paired with their content ids, repeats numbered ({@link numberRepeats}): what a study
 * hands the runner, so every id is computed once, in one pass.
 *
 * @example
 * ```ts
 * import { withContentIds } from "./content-id.ts";
 * const entries = withContentIds(["a", "b", "a"], (s) => s);
 * console.assert(entries[2].id === "a~2" && entries[2].item === "a");
 * ```
 */
export function withContentIds<I>(
  items: readonly I[],
  idOf: (item: I) => string,
): { readonly item: I; readonly id: string }[] {
  const ids = numberRepeats(items.map(idOf));
  return items.map((item, i) => ({ item, id: ids[i] }));
}

/**
 * The id part of an image input: its path, or its bytes / values; a tagged array (`{ pixels }`,
 * `{ data }`) is its values with its tag, so the same numbers read as pixels and as model data
 * are two different images. A decoder pipeline (a sharp instance) has no content to hash, so an
 * item that uses one needs an explicit id.
 *
 * @throws {InvalidArgumentError} for a sharp instance or another object
 * @throws {InvalidImageError} for a tagged array that is not a Float32Array, or both tags
 *
 * @example
 * ```ts
 * import { imageIdPart } from "./content-id.ts";
 * console.assert(imageIdPart("a.png") === "a.png");
 * const values = new Float32Array([0.5, -0.5]);
 * const [tag, array] = imageIdPart({ pixels: values }) as [string, Float32Array];
 * console.assert(tag === "pixels" && array === values);
 * ```
 */
export function imageIdPart(image: unknown): IdPart {
  if (typeof image === "string" || ArrayBuffer.isView(image)) return image as IdPart;
  const tagged = imageArray(image);
  if (tagged !== undefined) return [tagged.holds, tagged.array];
  throw new InvalidArgumentError(
    "an item whose image is a decoder pipeline (e.g. a sharp instance) needs an explicit `id`: " +
      "its content cannot be hashed; expected a path, bytes, model data ({ pixels } or { data } " +
      "arrays included), or an item with an id",
  );
}

/** FNV-1a over bytes, as two 32-bit lanes with different offsets (a 64-bit result). */
class Fnv64 {
  #a = 0x811c9dc5;
  #b = 0xcbf29ce4;

  part(part: IdPart): void {
    if (part === undefined || part === null) return this.#tagged(0, new Uint8Array(0));
    if (typeof part === "string") return this.#tagged(1, new TextEncoder().encode(part));
    if (typeof part === "number") {
      return this.#tagged(2, new Uint8Array(new Float64Array([part]).buffer));
    }
    if (typeof part === "boolean") return this.#tagged(3, new Uint8Array([part ? 1 : 0]));
    if (ArrayBuffer.isView(part)) {
      return this.#tagged(4, new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
    }
    this.#tagged(5, new Uint8Array(new Float64Array([part.length]).buffer));
    for (const inner of part) this.part(inner);
  }

  hex(): string {
    return (this.#a >>> 0).toString(16).padStart(8, "0") +
      (this.#b >>> 0).toString(16).padStart(8, "0");
  }

  #tagged(tag: number, bytes: Uint8Array): void {
    this.#byte(tag);
    for (const byte of new Uint8Array(new Float64Array([bytes.length]).buffer)) this.#byte(byte);
    for (let i = 0; i < bytes.length; i++) this.#byte(bytes[i]);
  }

  #byte(byte: number): void {
    this.#a = Math.imul(this.#a ^ byte, 0x01000193);
    this.#b = Math.imul(this.#b ^ byte, 0x01000193) ^ (this.#a >>> 15);
  }
}
