/**
 * ARO ("vision-language models are bags of words") test items: readers for its JSON layouts into
 * one item type, and a writer for the Visual Genome layouts.
 *
 * Layouts read (a JSON array of records each):
 * - VG-Relation (`visual_genome_relation.json`): `{image_path, bbox_x, bbox_y, bbox_w, bbox_h,
 *   true_caption, false_caption, relation_name}`; images in `images/` beside the JSON.
 * - VG-Attribution (`visual_genome_attribution.json`): the same with `attributes: [a, b]` instead of
 *   `relation_name`.
 * - COCO-Order / Flickr30k-Order: `{image, caption_options}` with the true caption FIRST, image paths
 *   relative to the dataset root (the JSON's folder by default).
 *
 * VG items become `options: [false_caption, true_caption]`, `trueIndex: 1`, the order ARO scores
 * them in (so a scorer that breaks ties by the first maximum counts a tie as wrong).
 *
 * @module
 */
import { dirname, isAbsolute, join } from "node:path";
import { DatasetError } from "../errors.ts";

/** One multiple-choice test item: an image, caption options, and which option is true. */
export interface AroItem {
  /** image file path (resolved against the image root) */
  readonly image: string;
  /** crop box [x, y, width, height] in pixels, when the layout gives one */
  readonly bbox?: readonly [number, number, number, number];
  /** caption options */
  readonly options: readonly string[];
  /** index of the true caption in `options` */
  readonly trueIndex: number;
  /** layout the item came from: "relation", "attribution" or "order" */
  readonly kind: string;
  /** what accuracy is grouped by: the relation name, the attribute pair "a_b", or "order" */
  readonly group: string;
}

/** A VG-Relation record as stored in `visual_genome_relation.json`. */
export interface VgRelationRecord {
  /** image file, relative to the images folder */
  readonly image_path: string;
  /** crop box left */
  readonly bbox_x: number;
  /** crop box top */
  readonly bbox_y: number;
  /** crop box width */
  readonly bbox_w: number;
  /** crop box height */
  readonly bbox_h: number;
  /** the caption that describes the image */
  readonly true_caption: string;
  /** the same caption with subject and object swapped */
  readonly false_caption: string;
  /** the relation ("left of", "on", …) */
  readonly relation_name: string;
}

/** A VG-Attribution record as stored in `visual_genome_attribution.json`. */
export interface VgAttributionRecord extends Omit<VgRelationRecord, "relation_name"> {
  /** the two attributes that were swapped in the false caption */
  readonly attributes: readonly [string, string];
}

/** Options of {@link parseAro} and {@link readAro}. */
export interface AroReadOptions {
  /**
   * folder image paths are relative to. Default for {@link readAro}: `<json folder>/images` for the
   * VG layouts (as ARO), the JSON's folder for the order layout; for {@link parseAro}: none (paths
   * kept as written). Absolute paths are kept.
   */
  readonly imageRoot?: string;
  /** name of the data in error messages */
  readonly source?: string;
}

/**
 * Converts a parsed ARO JSON array (any of the three layouts; detected per record) to items.
 *
 * @example
 * ```ts
 * import { parseAro } from "./aro.ts";
 * const [item] = parseAro([{
 *   image_path: "1.png", bbox_x: 0, bbox_y: 0, bbox_w: 32, bbox_h: 32,
 *   true_caption: "a red circle left of a blue square",
 *   false_caption: "a blue square left of a red circle", relation_name: "left of",
 * }], { imageRoot: "data/images" });
 * console.assert(item.options[item.trueIndex] === "a red circle left of a blue square");
 * console.assert(item.image === "data/images/1.png" && item.group === "left of");
 * ```
 */
export function parseAro(json: unknown, options: AroReadOptions = {}): AroItem[] {
  const source = options.source ?? "ARO JSON";
  if (!Array.isArray(json)) {
    throw new DatasetError(`${source} is ${typeof json}; expected a JSON array of test items`);
  }
  return json.map((value, i) => parseRecord(value, `${source}[${i}]`, options.imageRoot));
}

/**
 * Reads an ARO JSON file (VG-Relation, VG-Attribution or an order layout) into items.
 *
 * @example
 * ```ts ignore
 * import { readAro } from "./aro.ts";
 * const items = await readAro("aro/visual_genome_relation.json");
 * ```
 */
export async function readAro(path: string, options: AroReadOptions = {}): Promise<AroItem[]> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new DatasetError(`cannot read ARO JSON ${path}`, { cause: e });
  }
  const first = Array.isArray(json) ? json[0] : undefined;
  const isOrder = typeof first === "object" && first !== null && "caption_options" in first;
  const imageRoot = options.imageRoot ?? (isOrder ? dirname(path) : join(dirname(path), "images"));
  return parseAro(json, { imageRoot, source: options.source ?? path });
}

/**
 * Writes VG-Relation or VG-Attribution records as a JSON array (the layout ARO ships).
 *
 * @example
 * ```ts
 * import { readAro, writeAroVg } from "./aro.ts";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * await writeAroVg(path, [{
 *   image_path: "1.png", bbox_x: 0, bbox_y: 0, bbox_w: 32, bbox_h: 32,
 *   true_caption: "a red circle and a blue square", false_caption: "a blue circle and a red square",
 *   attributes: ["red", "blue"],
 * }]);
 * const [item] = await readAro(path);
 * console.assert(item.kind === "attribution" && item.group === "red_blue");
 * ```
 */
export async function writeAroVg(
  path: string,
  records: readonly (VgRelationRecord | VgAttributionRecord)[],
): Promise<void> {
  parseAro(records, { source: path }); // refuse to write what could not be read back
  await Deno.writeTextFile(path, JSON.stringify(records, null, 1));
}

function parseRecord(value: unknown, where: string, imageRoot: string | undefined): AroItem {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DatasetError(`${where} is ${JSON.stringify(value)}; expected an object`);
  }
  const r = value as Record<string, unknown>;
  if ("caption_options" in r) {
    const options = r.caption_options;
    if (!Array.isArray(options) || options.length < 2 || !options.every(isString)) {
      throw new DatasetError(
        `${where}.caption_options must be an array of ≥ 2 strings (true caption first)`,
      );
    }
    const image = str(r.image, `${where}.image`);
    return {
      image: resolve(image, imageRoot),
      options,
      trueIndex: 0,
      kind: "order",
      group: "order",
    };
  }
  const image = str(r.image_path, `${where}.image_path`);
  const bbox = (["bbox_x", "bbox_y", "bbox_w", "bbox_h"] as const).map((key) => {
    const v = r[key];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new DatasetError(`${where}.${key} is ${JSON.stringify(v)}; expected a number`);
    }
    return v;
  }) as [number, number, number, number];
  const options = [
    str(r.false_caption, `${where}.false_caption`),
    str(r.true_caption, `${where}.true_caption`),
  ];
  const base = { image: resolve(image, imageRoot), bbox, options, trueIndex: 1 };
  if ("relation_name" in r) {
    return { ...base, kind: "relation", group: str(r.relation_name, `${where}.relation_name`) };
  }
  if ("attributes" in r) {
    const a = r.attributes;
    if (!Array.isArray(a) || a.length !== 2 || !a.every(isString)) {
      throw new DatasetError(
        `${where}.attributes is ${JSON.stringify(a)}; expected two attribute strings`,
      );
    }
    return { ...base, kind: "attribution", group: `${a[0]}_${a[1]}` };
  }
  throw new DatasetError(
    `${where} has neither relation_name nor attributes nor caption_options; expected a ` +
      `VG-Relation, VG-Attribution or order record`,
  );
}

function resolve(image: string, root: string | undefined): string {
  return root === undefined || isAbsolute(image) ? image : join(root, image);
}

function isString(v: unknown): v is string {
  return typeof v === "string";
}

function str(v: unknown, where: string): string {
  if (typeof v !== "string") {
    throw new DatasetError(`${where} is ${JSON.stringify(v) ?? "missing"}; expected a string`);
  }
  return v;
}
