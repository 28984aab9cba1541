/**
 * The rows a localization study runs over — one per (image, caption, object word) with the ground
 * truth mask of that object's category — built from the formats real data comes in: a COCO
 * instances + captions pair, a COCO-IT table with its instances file, or a shapes world in memory.
 *
 * Rows are cheap: masks are decoded only when the study reaches the row (a row whose category has
 * no mask in its image fails there, and is counted as a bad row rather than stopping the study).
 *
 * @module
 */
import { basename, join } from "node:path";
import { contentId, numberRepeats } from "./content-id.ts";
import { DatasetError } from "../errors.ts";
import {
  categoryMask,
  type CocoCaptions,
  type CocoInstances,
  readCocoCaptions,
  readCocoInstances,
} from "../datasets/coco.ts";
import { type CocoItRow, readCocoIt } from "../datasets/coco-it.ts";
import { phraseOccurrences, phraseWords } from "../text/prompt.ts";
import type { ShapesWorld } from "../datasets/shapes/world.ts";

/** A binary ground-truth mask, row-major, with its size. */
export interface GroundTruth {
  /** `width·height` values, 1 inside the object(s) */
  readonly mask: Uint8Array;
  /** columns */
  readonly width: number;
  /** rows */
  readonly height: number;
}

/** One localization row. */
export interface LocalizationRow {
  /** unique id (the key of the row in a results file) */
  readonly id: string;
  /** image file path (or a label when `data` is given) */
  readonly image: string;
  /** the caption the word is part of */
  readonly caption: string;
  /** the object word whose map is compared to the mask */
  readonly word: string;
  /** the category whose masks are the ground truth */
  readonly category: string;
  /** the caption without the word (default: every occurrence removed at word boundaries) */
  readonly context?: string;
  /** the image as model data, used instead of loading `image` (in-memory worlds, oracles) */
  readonly data?: Float32Array;
  /** the ground truth; may throw {@link DatasetError} (a bad row) */
  groundTruth(): GroundTruth;
}

/** A COCO dataset: instances (masks), captions and the folder `file_name`s are relative to. */
export interface CocoLocalizationDataset {
  /** path of the instances JSON, or its parsed content */
  readonly instances: string | CocoInstances;
  /** path of the captions JSON, or its parsed content */
  readonly captions: string | CocoCaptions;
  /** folder holding the images */
  readonly imagesDir: string;
}

/** A COCO-IT table (rows with image, caption, word, category, context) and its instances file. */
export interface CocoItLocalizationDataset {
  /** path of the `.jsonl` table (images resolved against its folder), or parsed rows */
  readonly table: string | readonly CocoItRow[];
  /** the instances whose masks are the ground truth (rows link by `image_id`, else file name) */
  readonly instances: string | CocoInstances;
}

/** Anything `localizationStudy` accepts as a dataset. */
export type LocalizationDataset =
  | CocoLocalizationDataset
  | CocoItLocalizationDataset
  | readonly LocalizationRow[];

/**
 * Turns a dataset description into rows (reading the JSON files it names).
 *
 * COCO: one row per (image, caption, category) where the category's name occurs as a word of the
 * caption (exact, case-insensitive; multi-word category names such as "traffic light" are not
 * matched). COCO-IT: one row per table row.
 *
 * @throws {DatasetError} when a file cannot be read or is malformed
 *
 * @example
 * ```ts
 * import { localizationRows } from "./localization-rows.ts";
 * const rows = await localizationRows({
 *   instances: {
 *     images: [{ id: 1, file_name: "1.png", width: 2, height: 1 }],
 *     categories: [{ id: 1, name: "circle" }],
 *     annotations: [{ id: 1, image_id: 1, category_id: 1, area: 1, bbox: [0, 0, 1, 1],
 *       iscrowd: 0, segmentation: { counts: [0, 1, 1], size: [1, 2] } }],
 *   },
 *   captions: { annotations: [{ id: 5, image_id: 1, caption: "A red circle" }] },
 *   imagesDir: "images",
 * });
 * console.assert(rows.length === 1 && rows[0].word === "circle");
 * console.assert(rows[0].groundTruth().mask.join() === "1,0");
 * ```
 */
export async function localizationRows(
  dataset: LocalizationDataset,
): Promise<LocalizationRow[]> {
  if (Array.isArray(dataset)) return [...dataset as readonly LocalizationRow[]];
  const described = dataset as CocoLocalizationDataset | CocoItLocalizationDataset;
  const instances = typeof described.instances === "string"
    ? await readCocoInstances(described.instances)
    : described.instances;
  if ("table" in described) {
    const table = typeof described.table === "string"
      ? await readCocoIt(described.table)
      : described.table;
    return cocoItRows(table, instances);
  }
  if ("captions" in described && "imagesDir" in described) {
    const captions = typeof described.captions === "string"
      ? await readCocoCaptions(described.captions)
      : described.captions;
    return cocoRows(instances, captions, described.imagesDir);
  }
  throw new DatasetError(
    "localization dataset must be { instances, captions, imagesDir } (COCO), " +
      "{ table, instances } (COCO-IT) or an array of rows",
  );
}

/**
 * COCO rows: for every caption, every category whose name is a word of it.
 *
 * @example
 * ```ts
 * import { cocoRows } from "./localization-rows.ts";
 * const rows = cocoRows(
 *   { images: [{ id: 3, file_name: "x.jpg", width: 1, height: 1 }], annotations: [],
 *     categories: [{ id: 1, name: "dog" }, { id: 2, name: "cat" }] },
 *   { annotations: [{ id: 9, image_id: 3, caption: "a dog and a cat" }] },
 *   "val2017",
 * );
 * console.assert(rows.map((r) => r.id).join() === "3/9/dog,3/9/cat");
 * ```
 */
export function cocoRows(
  instances: CocoInstances,
  captions: CocoCaptions,
  imagesDir: string,
): LocalizationRow[] {
  const images = new Map(instances.images.map((im) => [im.id, im]));
  // multi-word categories ("dining table", "cell phone") are phrases of the caption
  const byName = new Map(
    instances.categories.map((c) => [phraseWords(c.name).join(" "), c]),
  );
  const rows: LocalizationRow[] = [];
  for (const caption of captions.annotations) {
    const image = images.get(caption.image_id);
    for (const [name, category] of byName) {
      if (phraseOccurrences(caption.caption, name).length === 0) continue;
      const imagePath = image ? join(imagesDir, image.file_name) : `(image id ${caption.image_id})`;
      rows.push({
        id: `${caption.image_id}/${caption.id}/${name}`,
        image: imagePath,
        caption: caption.caption,
        word: name,
        category: category.name,
        groundTruth: () => maskOf(instances, caption.image_id, category.name),
      });
    }
  }
  return rows;
}

/**
 * COCO-IT rows; each links to its image in the instances by `image_id`, or else by file name.
 *
 * @example
 * ```ts
 * import { cocoItRows } from "./localization-rows.ts";
 * import { cocoItRow } from "../datasets/coco-it.ts";
 * const [row] = cocoItRows([cocoItRow("/data/images/1.png", "a red circle", "red", "circle")], {
 *   images: [{ id: 1, file_name: "images/1.png", width: 1, height: 1 }],
 *   categories: [{ id: 1, name: "circle" }],
 *   annotations: [{ id: 1, image_id: 1, category_id: 1, area: 1, bbox: [0, 0, 1, 1],
 *     iscrowd: 0, segmentation: { counts: [0, 1], size: [1, 1] } }],
 * });
 * console.assert(row.context === "a circle" && row.groundTruth().mask[0] === 1);
 * ```
 */
export function cocoItRows(
  table: readonly CocoItRow[],
  instances: CocoInstances,
): LocalizationRow[] {
  const ids = numberRepeats(table.map((row) =>
    contentId(
      `${basename(row.image)}:${row.word}`,
      row.image,
      row.caption,
      row.word,
      row.category,
      row.context,
    )
  ));
  return table.map((row, index) => ({
    id: ids[index],
    image: row.image,
    caption: row.caption,
    word: row.word,
    category: row.category,
    context: row.context,
    groundTruth: () => maskOf(instances, imageIdOf(row, instances), row.category),
  }));
}

/**
 * In-memory rows of a shapes world: for every object its colour word and its shape word, the
 * image as data (no files), and the object's category (its shape) as ground truth — within a scene
 * every shape occurs once, so that is exactly the object's mask.
 *
 * @example
 * ```ts
 * import { shapesLocalizationRows } from "./localization-rows.ts";
 * import { shapesWorld } from "../datasets/shapes/world.ts";
 * const world = shapesWorld({ seed: 1, count: 2 });
 * const rows = shapesLocalizationRows(world);
 * const objects = world.scenes.reduce((n, s) => n + s.objects.length, 0);
 * console.assert(rows.length === 2 * objects && rows[0].data?.length === 3 * 32 * 32);
 * ```
 */
export function shapesLocalizationRows(
  world: ShapesWorld,
  options: { readonly words?: "colour" | "shape" | "both" } = {},
): LocalizationRow[] {
  const which = options.words ?? "both";
  return world.scenes.flatMap((scene) => {
    const data = scene.toData();
    return scene.objects.flatMap((object) => {
      const words = which === "both"
        ? [object.colour, object.shape]
        : [which === "colour" ? object.colour : object.shape];
      return words.map((word) => ({
        id: `${world.split}/${scene.id}/${word}`,
        image: `scene ${scene.id}`,
        caption: scene.caption,
        word,
        category: object.shape,
        data,
        groundTruth: () => ({ mask: object.mask, width: scene.size, height: scene.size }),
      }));
    });
  });
}

function imageIdOf(row: CocoItRow, instances: CocoInstances): number {
  if (row.image_id !== undefined) return row.image_id;
  const matches = instances.images.filter((im) =>
    row.image === im.file_name || row.image.endsWith(`/${im.file_name}`)
  );
  if (matches.length !== 1) {
    throw new DatasetError(
      `COCO-IT row for ${row.image} has no image_id and ${matches.length} images of the ` +
        `instances file match its file name; expected an image_id or exactly one match`,
    );
  }
  return matches[0].id;
}

function maskOf(instances: CocoInstances, imageId: number, category: string): GroundTruth {
  const image = instances.images.find((im) => im.id === imageId);
  if (!image) {
    throw new DatasetError(`image id ${imageId} is not in the instances file; expected its masks`);
  }
  const mask = categoryMask(instances, imageId, category);
  if (!mask.some((v) => v !== 0)) {
    throw new DatasetError(
      `category "${category}" has no mask in image ${imageId} (${image.file_name}); expected ` +
        `at least one annotated pixel`,
    );
  }
  return { mask, width: image.width, height: image.height };
}
