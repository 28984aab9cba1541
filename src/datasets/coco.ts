/**
 * COCO instances and captions JSON: typed readers that check every entry (saying which one is
 * wrong), writers, and the per-image masks that studies compare information maps against.
 *
 * Masks are decoded by {@link cocoMask} (polygons, uncompressed and compressed RLE, exactly as
 * pycocotools); see `coco-mask.ts`.
 *
 * @module
 */
import { DatasetError } from "../errors.ts";
import { cocoMask, type CocoSegmentation } from "./coco-mask.ts";

export { cocoMask };

/** One image entry. `file_name` is relative to the image folder the user keeps beside the JSON. */
export interface CocoImage {
  /** image id, referenced by annotations */
  readonly id: number;
  /** file name (COCO: bare name like "000000397133.jpg"; the shapes export: "images/1.png") */
  readonly file_name: string;
  /** width in pixels */
  readonly width: number;
  /** height in pixels */
  readonly height: number;
}

/** One instance annotation. */
export interface CocoAnnotation {
  /** annotation id */
  readonly id: number;
  /** id of the annotated image */
  readonly image_id: number;
  /** id of the object category */
  readonly category_id: number;
  /** polygons or RLE (uncompressed or compressed) */
  readonly segmentation: CocoSegmentation;
  /** object area in pixels */
  readonly area: number;
  /** [x, y, width, height] */
  readonly bbox: readonly [number, number, number, number];
  /** 1 for crowd regions (usually RLE), else 0 */
  readonly iscrowd: 0 | 1;
}

/** One object category. */
export interface CocoCategory {
  /** category id */
  readonly id: number;
  /** category name ("person", "circle") */
  readonly name: string;
  /** parent category name */
  readonly supercategory?: string;
}

/** A COCO instances file. Unknown top-level fields (info, licenses) are kept as they are. */
export interface CocoInstances {
  /** images */
  readonly images: readonly CocoImage[];
  /** instance annotations */
  readonly annotations: readonly CocoAnnotation[];
  /** categories */
  readonly categories: readonly CocoCategory[];
  /** other top-level fields, kept */
  readonly [extra: string]: unknown;
}

/** One caption annotation. */
export interface CocoCaption {
  /** annotation id */
  readonly id: number;
  /** id of the captioned image */
  readonly image_id: number;
  /** the caption text */
  readonly caption: string;
}

/** A COCO captions file (images are optional here; real COCO files include them). */
export interface CocoCaptions {
  /** images, when present */
  readonly images?: readonly CocoImage[];
  /** caption annotations */
  readonly annotations: readonly CocoCaption[];
  /** other top-level fields, kept */
  readonly [extra: string]: unknown;
}

/**
 * Checks a parsed instances JSON value and returns it typed. Throws {@link DatasetError} naming
 * the first bad entry (missing field, wrong type, unknown image or category id).
 *
 * @example
 * ```ts
 * import { parseCocoInstances } from "./coco.ts";
 * const data = parseCocoInstances({
 *   images: [{ id: 1, file_name: "a.png", width: 2, height: 2 }],
 *   categories: [{ id: 1, name: "circle" }],
 *   annotations: [{
 *     id: 1, image_id: 1, category_id: 1, area: 1, bbox: [0, 0, 1, 1], iscrowd: 0,
 *     segmentation: { counts: [0, 1, 3], size: [2, 2] },
 *   }],
 * });
 * console.assert(data.annotations.length === 1);
 * ```
 */
export function parseCocoInstances(json: unknown, source = "instances JSON"): CocoInstances {
  const root = record(json, source);
  const images = list(root.images, `${source}: images`).map((v, i) =>
    checkImage(v, `${source}: images[${i}]`)
  );
  const categories = list(root.categories, `${source}: categories`).map((v, i) => {
    const where = `${source}: categories[${i}]`;
    const c = record(v, where);
    integer(c.id, `${where}.id`);
    text(c.name, `${where}.name`);
    if (c.supercategory !== undefined) text(c.supercategory, `${where}.supercategory`);
    return c as unknown as CocoCategory;
  });
  const imageIds = uniqueIds(images, `${source}: images`);
  const categoryIds = uniqueIds(categories, `${source}: categories`);
  const annotations = list(root.annotations, `${source}: annotations`).map((v, i) => {
    const where = `${source}: annotations[${i}]`;
    const a = record(v, where);
    integer(a.id, `${where}.id`);
    known(a.image_id, imageIds, `${where}.image_id`, "an id from images");
    known(a.category_id, categoryIds, `${where}.category_id`, "an id from categories");
    if (a.segmentation === undefined || a.segmentation === null) {
      throw new DatasetError(`${where} has no segmentation; expected polygons or an RLE`);
    }
    number(a.area, `${where}.area`);
    if (!Array.isArray(a.bbox) || a.bbox.length !== 4 || !a.bbox.every(Number.isFinite)) {
      throw new DatasetError(
        `${where}.bbox is ${JSON.stringify(a.bbox)}; expected [x, y, width, height]`,
      );
    }
    if (a.iscrowd !== 0 && a.iscrowd !== 1) {
      throw new DatasetError(`${where}.iscrowd is ${JSON.stringify(a.iscrowd)}; expected 0 or 1`);
    }
    return a as unknown as CocoAnnotation;
  });
  uniqueIds(annotations, `${source}: annotations`);
  return { ...root, images, categories, annotations };
}

/**
 * Checks a parsed captions JSON value and returns it typed.
 *
 * @example
 * ```ts
 * import { parseCocoCaptions } from "./coco.ts";
 * const data = parseCocoCaptions({ annotations: [{ id: 1, image_id: 7, caption: "a red circle" }] });
 * console.assert(data.annotations[0].caption === "a red circle");
 * ```
 */
export function parseCocoCaptions(json: unknown, source = "captions JSON"): CocoCaptions {
  const root = record(json, source);
  const images = root.images === undefined
    ? undefined
    : list(root.images, `${source}: images`).map((v, i) =>
      checkImage(v, `${source}: images[${i}]`)
    );
  const imageIds = images ? uniqueIds(images, `${source}: images`) : undefined;
  const annotations = list(root.annotations, `${source}: annotations`).map((v, i) => {
    const where = `${source}: annotations[${i}]`;
    const a = record(v, where);
    integer(a.id, `${where}.id`);
    if (imageIds) known(a.image_id, imageIds, `${where}.image_id`, "an id from images");
    else integer(a.image_id, `${where}.image_id`);
    text(a.caption, `${where}.caption`);
    return a as unknown as CocoCaption;
  });
  return images ? { ...root, images, annotations } : { ...root, annotations };
}

/**
 * Reads and checks a COCO instances file.
 *
 * @example
 * ```ts ignore
 * import { readCocoInstances } from "./coco.ts";
 * const coco = await readCocoInstances("annotations/instances_val2017.json");
 * ```
 */
export async function readCocoInstances(path: string | URL): Promise<CocoInstances> {
  return parseCocoInstances(await readJson(path), String(path));
}

/**
 * Reads and checks a COCO captions file.
 *
 * @example
 * ```ts ignore
 * import { readCocoCaptions } from "./coco.ts";
 * const captions = await readCocoCaptions("annotations/captions_val2017.json");
 * ```
 */
export async function readCocoCaptions(path: string | URL): Promise<CocoCaptions> {
  return parseCocoCaptions(await readJson(path), String(path));
}

/**
 * Writes a COCO instances file (checked first, so a written file always reads back).
 *
 * @example
 * ```ts
 * import { readCocoInstances, writeCocoInstances } from "./coco.ts";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * await writeCocoInstances(path, { images: [], annotations: [], categories: [] });
 * console.assert((await readCocoInstances(path)).images.length === 0);
 * ```
 */
export async function writeCocoInstances(path: string | URL, data: CocoInstances): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(parseCocoInstances(data, String(path))));
}

/**
 * Writes a COCO captions file (checked first).
 *
 * @example
 * ```ts
 * import { readCocoCaptions, writeCocoCaptions } from "./coco.ts";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * await writeCocoCaptions(path, { annotations: [{ id: 1, image_id: 1, caption: "a red circle" }] });
 * console.assert((await readCocoCaptions(path)).annotations.length === 1);
 * ```
 */
export async function writeCocoCaptions(path: string | URL, data: CocoCaptions): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(parseCocoCaptions(data, String(path))));
}

/**
 * The union of the masks of every annotation of one category in one image, row-major
 * (`height·width`): the ground truth of COCO-IT localization. Throws when the image or the
 * category is unknown; an image without such objects gives an all-zero mask.
 *
 * @example
 * ```ts
 * import { categoryMask } from "./coco.ts";
 * const mask = categoryMask({
 *   images: [{ id: 1, file_name: "a.png", width: 2, height: 2 }],
 *   categories: [{ id: 1, name: "circle" }],
 *   annotations: [{
 *     id: 1, image_id: 1, category_id: 1, area: 1, bbox: [1, 0, 1, 1], iscrowd: 0,
 *     segmentation: { counts: [2, 1, 1], size: [2, 2] },
 *   }],
 * }, 1, "circle");
 * console.assert(mask.join() === "0,1,0,0");
 * ```
 */
export function categoryMask(
  instances: CocoInstances,
  imageId: number,
  category: string | number,
): Uint8Array {
  const image = instances.images.find((im) => im.id === imageId);
  if (!image) throw new DatasetError(`image id ${imageId} is not in the instances file`);
  const found = instances.categories.find((c) =>
    typeof category === "number" ? c.id === category : c.name === category
  );
  if (!found) {
    const names = instances.categories.map((c) => c.name).join(", ");
    throw new DatasetError(`category "${category}" is unknown; expected one of: ${names}`);
  }
  const union = new Uint8Array(image.height * image.width);
  for (const a of instances.annotations) {
    if (a.image_id !== imageId || a.category_id !== found.id) continue;
    const mask = cocoMask(a, image.height, image.width);
    for (let i = 0; i < union.length; i++) union[i] |= mask[i];
  }
  return union;
}

async function readJson(path: string | URL): Promise<unknown> {
  let textContent: string;
  try {
    textContent = await Deno.readTextFile(path);
  } catch (e) {
    throw new DatasetError(`cannot read ${path}`, { cause: e });
  }
  try {
    return JSON.parse(textContent);
  } catch (e) {
    throw new DatasetError(`${path} is not valid JSON`, { cause: e });
  }
}

function checkImage(value: unknown, where: string): CocoImage {
  const im = record(value, where);
  integer(im.id, `${where}.id`);
  text(im.file_name, `${where}.file_name`);
  for (const key of ["width", "height"] as const) {
    if (!Number.isInteger(im[key]) || (im[key] as number) <= 0) {
      throw new DatasetError(`${where}.${key} is ${im[key]}; expected a positive integer`);
    }
  }
  return im as unknown as CocoImage;
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DatasetError(`${where} is ${describe(value)}; expected an object`);
  }
  return value as Record<string, unknown>;
}

function list(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) {
    throw new DatasetError(`${where} is ${describe(value)}; expected an array`);
  }
  return value;
}

function integer(value: unknown, where: string): void {
  if (!Number.isInteger(value)) {
    throw new DatasetError(`${where} is ${describe(value)}; expected an integer`);
  }
}

function number(value: unknown, where: string): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new DatasetError(`${where} is ${describe(value)}; expected a finite number`);
  }
}

function text(value: unknown, where: string): void {
  if (typeof value !== "string") {
    throw new DatasetError(`${where} is ${describe(value)}; expected a string`);
  }
}

function known(value: unknown, ids: Set<number>, where: string, expected: string): void {
  if (!ids.has(value as number)) {
    throw new DatasetError(`${where} is ${describe(value)}; expected ${expected}`);
  }
}

function uniqueIds(entries: readonly { id: number }[], where: string): Set<number> {
  const ids = new Set<number>();
  for (const e of entries) {
    if (ids.has(e.id)) throw new DatasetError(`${where} has id ${e.id} twice; expected unique ids`);
    ids.add(e.id);
  }
  return ids;
}

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  const json = JSON.stringify(value);
  return json === undefined ? String(value) : json.length > 60 ? `${json.slice(0, 57)}...` : json;
}
