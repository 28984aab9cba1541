/**
 * Writes a shapes world in the formats real data comes in, so studies run on it through exactly
 * the code paths a user's COCO / ARO / COCO-IT data takes.
 *
 * Folder layout written by {@link exportShapesDataset}:
 * ```
 * <dir>/images/<id>.png        the scenes (RGB PNG)
 * <dir>/instances.json         COCO instances (categories circle/square/triangle, compressed RLE)
 * <dir>/captions.json          COCO captions (one caption per image)
 * <dir>/aro_relation.json      VG-Relation layout (image_path relative to images/)
 * <dir>/aro_attribution.json   VG-Attribution layout
 * <dir>/coco_it.jsonl          COCO-IT rows (image relative to <dir>)
 * ```
 *
 * @module
 */
import { loadSharp } from "../../images/sharp.ts";
import { join } from "node:path";
import {
  type CocoAnnotation,
  type CocoCaption,
  type CocoCategory,
  type CocoImage,
  writeCocoCaptions,
  writeCocoInstances,
} from "../coco.ts";
import { maskBbox, rleEncode, rleToString } from "../coco-mask.ts";
import { type VgAttributionRecord, type VgRelationRecord, writeAroVg } from "../aro.ts";
import { type CocoItRow, cocoItRow, writeCocoIt } from "../coco-it.ts";
import { SHAPES, shapesCaption } from "./caption.ts";
import type { ShapesScene, ShapesWorld } from "./world.ts";

/** What {@link exportShapesDataset} wrote. */
export interface ShapesExportSummary {
  /** number of PNG images */
  readonly images: number;
  /** number of instance annotations (objects) */
  readonly annotations: number;
  /** number of VG-Relation items (scenes with ≥ 2 objects) */
  readonly relationItems: number;
  /** number of VG-Attribution items (scenes with ≥ 2 objects) */
  readonly attributionItems: number;
  /** number of COCO-IT rows (two per object: its colour word and its shape word) */
  readonly cocoItRows: number;
}

/** COCO categories of the shapes world: ids 1, 2, 3 for circle, square, triangle. */
export const SHAPES_CATEGORIES: readonly CocoCategory[] = SHAPES.map((name, i) => ({
  id: i + 1,
  name,
  supercategory: "shape",
}));

/**
 * Writes the world's images, COCO instances + captions, ARO relation/attribution items and the
 * COCO-IT table into `dir` (created if needed).
 *
 * Relation items: the false caption swaps the two related objects ("a blue square left of a red
 * circle" for "a red circle left of a blue square"). Attribution items: it swaps their colours
 * ("a blue circle left of a red square"). Both are false in the scene because colours and shapes
 * are distinct within a scene. The crop box is the whole image.
 *
 * @example
 * ```ts
 * import { exportShapesDataset } from "./export.ts";
 * import { shapesWorld } from "./world.ts";
 * const dir = await Deno.makeTempDir();
 * const summary = await exportShapesDataset(shapesWorld({ seed: 1, count: 3, split: "test" }), dir);
 * console.assert(summary.images === 3);
 * ```
 */
export async function exportShapesDataset(
  world: ShapesWorld,
  dir: string,
): Promise<ShapesExportSummary> {
  await Deno.mkdir(join(dir, "images"), { recursive: true });
  for (const scene of world.scenes) {
    await (await loadSharp())(scene.rgb, {
      raw: { width: scene.size, height: scene.size, channels: 3 },
    })
      .png()
      .toFile(join(dir, imageFile(scene)));
  }
  const images: CocoImage[] = world.scenes.map((s) => ({
    id: s.id,
    file_name: imageFile(s),
    width: s.size,
    height: s.size,
  }));
  const annotations = instanceAnnotations(world.scenes);
  await writeCocoInstances(join(dir, "instances.json"), {
    info: { description: `shapes world seed ${world.seed}, ${world.split} split` },
    images,
    annotations,
    categories: SHAPES_CATEGORIES,
  });
  const captions: CocoCaption[] = world.scenes.map((s) => ({
    id: s.id,
    image_id: s.id,
    caption: s.caption,
  }));
  await writeCocoCaptions(join(dir, "captions.json"), { images, annotations: captions });
  const related = world.scenes.filter((s) => s.objects.length >= 2);
  const relations = related.map(relationRecord);
  const attributions = related.map(attributionRecord);
  await writeAroVg(join(dir, "aro_relation.json"), relations);
  await writeAroVg(join(dir, "aro_attribution.json"), attributions);
  const rows = world.scenes.flatMap(cocoItRows);
  await writeCocoIt(join(dir, "coco_it.jsonl"), rows);
  return {
    images: images.length,
    annotations: annotations.length,
    relationItems: relations.length,
    attributionItems: attributions.length,
    cocoItRows: rows.length,
  };
}

function imageFile(scene: ShapesScene): string {
  return `images/${scene.id}.png`;
}

function instanceAnnotations(scenes: readonly ShapesScene[]): CocoAnnotation[] {
  const annotations: CocoAnnotation[] = [];
  for (const scene of scenes) {
    for (const object of scene.objects) {
      const rle = rleEncode(object.mask, scene.size, scene.size);
      annotations.push({
        id: annotations.length + 1,
        image_id: scene.id,
        category_id: SHAPES.indexOf(object.shape) + 1,
        segmentation: { counts: rleToString(rle.counts), size: rle.size },
        area: object.mask.reduce((a, b) => a + b, 0),
        bbox: maskBbox(object.mask, scene.size, scene.size),
        iscrowd: 0,
      });
    }
  }
  return annotations;
}

function vgBase(scene: ShapesScene) {
  return {
    image_path: `${scene.id}.png`,
    bbox_x: 0,
    bbox_y: 0,
    bbox_w: scene.size,
    bbox_h: scene.size,
  };
}

function relationRecord(scene: ShapesScene): VgRelationRecord {
  const [a, b, ...rest] = scene.objects;
  return {
    ...vgBase(scene),
    true_caption: scene.caption,
    false_caption: shapesCaption([b, a, ...rest], scene.relation),
    relation_name: scene.relation!,
  };
}

function attributionRecord(scene: ShapesScene): VgAttributionRecord {
  const [a, b, ...rest] = scene.objects;
  const swapped = [{ ...a, colour: b.colour }, { ...b, colour: a.colour }, ...rest];
  return {
    ...vgBase(scene),
    true_caption: scene.caption,
    false_caption: shapesCaption(swapped, scene.relation),
    attributes: [a.colour, b.colour],
  };
}

function cocoItRows(scene: ShapesScene): CocoItRow[] {
  return scene.objects.flatMap((o) => [
    cocoItRow(imageFile(scene), scene.caption, o.colour, o.shape, scene.id),
    cocoItRow(imageFile(scene), scene.caption, o.shape, o.shape, scene.id),
  ]);
}
