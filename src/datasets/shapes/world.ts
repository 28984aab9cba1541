/**
 * The shapes world: seeded, deterministic scenes of 1–3 non-overlapping coloured shapes on black,
 * each with exact per-object masks and a caption naming attributes and one spatial relation.
 *
 * Within a scene every object has a different colour AND a different shape, so each colour word
 * and each shape word of a caption names exactly one object: the word's ground-truth mask is that
 * object's mask, and swapping two objects or their colours always changes the caption. (Training
 * data may opt out with `sameShapeShare`: scenes whose first two objects share their shape, so a
 * model must bind each colour to its own object; test scenes never do.)
 *
 * @module
 */
import { InvalidArgumentError } from "../../errors.ts";
import { Random } from "../../numerics/random.ts";
import { drawShape, type ShapeName } from "./draw.ts";
import {
  type CaptionObject,
  COLOUR_RGB,
  type ColourName,
  COLOURS,
  type RelationName,
  SHAPES,
  SHAPES_VOCABULARY,
  shapesCaption,
  type SizeName,
  SIZES,
} from "./caption.ts";

export { SHAPES_VOCABULARY };

/** Which half of the world: train and test scenes never coincide (same caption and layout). */
export type ShapesSplit = "train" | "test";

/** One object of a scene. */
export interface ShapesObject extends CaptionObject {
  /** centre x in pixels (pixel x spans [x, x + 1)) */
  readonly cx: number;
  /** centre y in pixels, y pointing down */
  readonly cy: number;
  /** half-extent in pixels: the object fills the box [cx − r, cx + r) × [cy − r, cy + r) */
  readonly radius: number;
  /** row-major binary mask, `size·size`, 1 where the object is */
  readonly mask: Uint8Array;
}

/** One scene: objects in caption order, the caption, and the image. */
export interface ShapesScene {
  /** 1-based index of the scene within its split (also its COCO image id) */
  readonly id: number;
  /** image width = height in pixels */
  readonly size: number;
  /** objects in the order the caption names them */
  readonly objects: readonly ShapesObject[];
  /** relation between objects[0] and objects[1] (absent for one object) */
  readonly relation?: RelationName;
  /** the caption, lower-case words separated by single spaces */
  readonly caption: string;
  /** the image, uint8 RGB, HWC row-major (`size·size·3`) */
  readonly rgb: Uint8Array;
  /** the image as model data: Float32Array CHW in [−1, 1] */
  toData(): Float32Array;
}

/** Options of {@link shapesWorld}. */
export interface ShapesWorldOptions {
  /** seed of the world; the same seed, split and options give the same scenes, byte for byte */
  readonly seed: number;
  /** image size in pixels (default 32; radii and margins scale with it) */
  readonly size?: number;
  /** number of scenes */
  readonly count: number;
  /** most objects per scene, 1–3 (default 3) */
  readonly maxObjects?: number;
  /** fewest objects per scene, 1…maxObjects (default 1) */
  readonly minObjects?: number;
  /**
   * share of scenes with ≥ 2 objects whose first two objects have the same shape (in different
   * colours), for training data that forces colour–object binding (default 0: every object of a
   * scene has its own shape, which the studies' ground truth assumes)
   */
  readonly sameShapeShare?: number;
  /** "train" (default) or "test" */
  readonly split?: ShapesSplit;
}

/** A generated world: its options and its scenes. */
export interface ShapesWorld {
  /** the seed the scenes were generated from */
  readonly seed: number;
  /** image size in pixels */
  readonly size: number;
  /** most objects per scene */
  readonly maxObjects: number;
  /** which split these scenes belong to */
  readonly split: ShapesSplit;
  /** the scenes, ids 1…count */
  readonly scenes: readonly ShapesScene[];
  /** every word a caption can contain */
  readonly vocabulary: readonly string[];
}

/** Pixel geometry at a given image size: radii of the size classes and the separation margin. */
export interface ShapesGeometry {
  /** half-extent of each size class in pixels */
  readonly radius: Readonly<Record<SizeName, number>>;
  /** minimum empty gap between two objects' boxes, and the margin that makes relations unambiguous */
  readonly margin: number;
}

/**
 * Radii and margin at an image size: small 4 px, large 7 px and a 2 px margin at 32 px, scaled.
 *
 * @example
 * ```ts
 * import { shapesGeometry } from "./world.ts";
 * const g = shapesGeometry(32);
 * console.assert(g.radius.small === 4 && g.radius.large === 7 && g.margin === 2);
 * ```
 */
export function shapesGeometry(size: number): ShapesGeometry {
  const scale = size / 32;
  return {
    radius: {
      small: Math.max(2, Math.round(4 * scale)),
      large: Math.max(3, Math.round(7 * scale)),
    },
    margin: Math.max(1, Math.round(2 * scale)),
  };
}

/** A box given by centre and half-extent. */
export interface CentredBox {
  /** centre x */
  readonly cx: number;
  /** centre y (down) */
  readonly cy: number;
  /** half-extent */
  readonly radius: number;
}

/**
 * The relation "a REL b" that holds unambiguously, or undefined. "a left of b" holds when a's box
 * ends at least `margin` px before b's box starts horizontally AND the horizontal centre offset
 * exceeds the vertical one by at least `margin` (so "above"/"below" would not describe it better);
 * likewise for the others (y points down, so "above" means smaller y).
 *
 * @example
 * ```ts
 * import { relationBetween } from "./world.ts";
 * const a = { cx: 6, cy: 16, radius: 4 }, b = { cx: 24, cy: 14, radius: 4 };
 * console.assert(relationBetween(a, b, 2) === "left of");
 * console.assert(relationBetween(b, a, 2) === "right of");
 * ```
 */
export function relationBetween(
  a: CentredBox,
  b: CentredBox,
  margin: number,
): RelationName | undefined {
  const dx = b.cx - a.cx, dy = b.cy - a.cy;
  const reach = a.radius + b.radius + margin;
  if (Math.abs(dx) >= reach && Math.abs(dx) >= Math.abs(dy) + margin) {
    return dx > 0 ? "left of" : "right of";
  }
  if (Math.abs(dy) >= reach && Math.abs(dy) >= Math.abs(dx) + margin) {
    return dy > 0 ? "above" : "below";
  }
  return undefined;
}

/**
 * Whether two boxes are apart by at least `margin` empty pixels along some axis.
 *
 * @example
 * ```ts
 * import { boxesApart } from "./world.ts";
 * console.assert(boxesApart({ cx: 5, cy: 5, radius: 3 }, { cx: 13, cy: 5, radius: 3 }, 2));
 * console.assert(!boxesApart({ cx: 5, cy: 5, radius: 3 }, { cx: 12, cy: 5, radius: 3 }, 2));
 * ```
 */
export function boxesApart(a: CentredBox, b: CentredBox, margin: number): boolean {
  const reach = a.radius + b.radius + margin;
  return Math.abs(a.cx - b.cx) >= reach || Math.abs(a.cy - b.cy) >= reach;
}

/**
 * Generates a shapes world. Deterministic: the same options give byte-identical scenes. The train
 * and test splits draw from different streams of the seed and, in addition, keep only scenes whose
 * caption+layout hash falls in their own part of a fixed partition (1 in 5 hashes is test), so no
 * scene of one split can appear in the other.
 *
 * @example
 * ```ts
 * import { shapesWorld } from "./world.ts";
 * const world = shapesWorld({ seed: 1, count: 4 });
 * const scene = world.scenes[0];
 * console.assert(scene.rgb.length === 32 * 32 * 3 && scene.toData().length === 3 * 32 * 32);
 * console.assert(scene.objects.length >= 1 && scene.objects.length <= 3);
 * ```
 */
export function shapesWorld(options: ShapesWorldOptions): ShapesWorld {
  const { seed, count } = options;
  const size = options.size ?? 32;
  const maxObjects = options.maxObjects ?? 3;
  const minObjects = options.minObjects ?? 1;
  const sameShapeShare = options.sameShapeShare ?? 0;
  const split = options.split ?? "train";
  validateOptions(seed, size, count, maxObjects, split);
  validateTrainingOptions(minObjects, maxObjects, sameShapeShare);
  const root = new Random(seed);
  const trainStream = root.fork();
  const testStream = root.fork();
  const rng = split === "train" ? trainStream : testStream;
  const geometry = shapesGeometry(size);
  const scenes: ShapesScene[] = [];
  while (scenes.length < count) {
    const layout = drawLayout(rng, size, { minObjects, maxObjects, sameShapeShare }, geometry);
    if (splitOf(layoutKey(layout)) !== split) continue;
    scenes.push(renderScene(scenes.length + 1, size, layout));
  }
  return { seed, size, maxObjects, split, scenes, vocabulary: SHAPES_VOCABULARY };
}

/**
 * The key that identifies a scene across splits: its caption and its objects' attributes and
 * positions.
 *
 * @example
 * ```ts
 * import { sceneKey, shapesWorld } from "./world.ts";
 * const [scene] = shapesWorld({ seed: 3, count: 1 }).scenes;
 * console.assert(sceneKey(scene).startsWith(scene.caption));
 * ```
 */
export function sceneKey(scene: Pick<ShapesScene, "caption" | "objects">): string {
  return layoutKey({ caption: scene.caption, objects: scene.objects });
}

interface Layout {
  readonly caption: string;
  readonly relation?: RelationName;
  readonly objects: readonly (CaptionObject & CentredBox)[];
}

function validateOptions(
  seed: number,
  size: number,
  count: number,
  maxObjects: number,
  split: string,
): void {
  if (!Number.isFinite(seed)) throw new InvalidArgumentError(`seed must be finite, got ${seed}`);
  if (!Number.isInteger(size) || size < 16) {
    throw new InvalidArgumentError(`size must be an integer ≥ 16 (pixels), got ${size}`);
  }
  if (!Number.isInteger(count) || count < 0) {
    throw new InvalidArgumentError(`count must be a non-negative integer, got ${count}`);
  }
  if (!Number.isInteger(maxObjects) || maxObjects < 1 || maxObjects > 3) {
    throw new InvalidArgumentError(`maxObjects must be 1, 2 or 3, got ${maxObjects}`);
  }
  if (split !== "train" && split !== "test") {
    throw new InvalidArgumentError(`split must be "train" or "test", got "${split}"`);
  }
}

function validateTrainingOptions(minObjects: number, maxObjects: number, share: number): void {
  if (!Number.isInteger(minObjects) || minObjects < 1 || minObjects > maxObjects) {
    throw new InvalidArgumentError(
      `minObjects must be an integer in 1…maxObjects (${maxObjects}), got ${minObjects}`,
    );
  }
  if (!(share >= 0 && share <= 1)) {
    throw new InvalidArgumentError(`sameShapeShare must be a share in [0, 1], got ${share}`);
  }
}

interface LayoutCounts {
  readonly minObjects: number;
  readonly maxObjects: number;
  readonly sameShapeShare: number;
}

/** Draws attributes, then positions by rejection until the boxes are apart and the relation clear. */
function drawLayout(
  rng: Random,
  size: number,
  counts: LayoutCounts,
  geometry: ShapesGeometry,
): Layout {
  const { minObjects, maxObjects, sameShapeShare } = counts;
  for (;;) {
    // minObjects 1 draws 1 + int(maxObjects), the default world's stream unchanged
    const n = minObjects + rng.int(maxObjects - minObjects + 1);
    const colours = shuffled(rng, COLOURS).slice(0, n);
    const shapes = shuffled(rng, SHAPES).slice(0, n);
    // a draw only when asked for, so the default world's stream is unchanged
    if (sameShapeShare > 0 && n >= 2 && rng.uniform() < sameShapeShare) shapes[1] = shapes[0];
    const attributes = colours.map((colour, i) => ({
      colour,
      shape: shapes[i],
      size: SIZES[rng.int(SIZES.length)],
      sizeNamed: rng.uniform() < 0.5,
    }));
    for (let attempt = 0; attempt < 5000; attempt++) {
      const objects = attributes.map((a) => {
        const radius = geometry.radius[a.size];
        const span = size - 2 * radius + 1;
        return { ...a, radius, cx: radius + rng.int(span), cy: radius + rng.int(span) };
      });
      const placed = placement(objects, geometry.margin);
      if (placed) return { ...placed, caption: shapesCaption(objects, placed.relation) };
    }
  }
}

function placement(
  objects: readonly (CaptionObject & CentredBox)[],
  margin: number,
): Omit<Layout, "caption"> | undefined {
  for (let i = 0; i < objects.length; i++) {
    for (let j = i + 1; j < objects.length; j++) {
      if (!boxesApart(objects[i], objects[j], margin)) return undefined;
    }
  }
  if (objects.length === 1) return { objects };
  const relation = relationBetween(objects[0], objects[1], margin);
  return relation ? { objects, relation } : undefined;
}

function shuffled<T>(rng: Random, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function layoutKey(layout: Pick<Layout, "caption" | "objects">): string {
  const parts = layout.objects.map((o) => `${o.shape},${o.colour},${o.size},${o.cx},${o.cy}`);
  return `${layout.caption}|${parts.join(";")}`;
}

/** FNV-1a 32-bit hash of the key; 1 in 5 hash values belongs to the test split. */
function splitOf(key: string): ShapesSplit {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 5 === 0 ? "test" : "train";
}

function renderScene(id: number, size: number, layout: Layout): ShapesScene {
  const { rgb, masks } = paintObjects(size, layout.objects);
  return {
    id,
    size,
    objects: layout.objects.map((o, i) => ({ ...o, mask: masks[i] })),
    relation: layout.relation,
    caption: layout.caption,
    rgb,
    toData: () => hwcToChw(rgb, size),
  };
}

/** An object as {@link paintObjects} paints it: its shape and colour in a box. */
export type PaintedObject = Pick<CaptionObject, "shape" | "colour"> & CentredBox;

/**
 * The picture of objects on black, as the world paints its scenes: uint8 RGB, HWC row-major, and
 * each object's mask. Objects later in the list paint over earlier ones (a scene's never overlap).
 *
 * @example
 * ```ts
 * import { paintObjects } from "./world.ts";
 * const { rgb, masks } = paintObjects(16, [{ shape: "square", colour: "red", cx: 8, cy: 8, radius: 2 }]);
 * console.assert(masks[0][8 * 16 + 8] === 1 && rgb[3 * (8 * 16 + 8)] === 255 && rgb[0] === 0);
 * ```
 */
export function paintObjects(
  size: number,
  objects: readonly PaintedObject[],
): { rgb: Uint8Array; masks: Uint8Array[] } {
  const rgb = new Uint8Array(size * size * 3);
  const masks = objects.map((o) => {
    const mask = drawShape(o.shape as ShapeName, size, o.cx, o.cy, o.radius);
    const [r, g, b] = COLOUR_RGB[o.colour as ColourName];
    for (let p = 0; p < mask.length; p++) {
      if (mask[p]) {
        rgb[3 * p] = r;
        rgb[3 * p + 1] = g;
        rgb[3 * p + 2] = b;
      }
    }
    return mask;
  });
  return { rgb, masks };
}

/**
 * uint8 HWC RGB → Float32Array CHW in [−1, 1] (v / 127.5 − 1).
 *
 * @example
 * ```ts
 * import { hwcToChw } from "./world.ts";
 * const data = hwcToChw(new Uint8Array([255, 0, 0]), 1);
 * console.assert(data[0] === 1 && data[1] === -1 && data[2] === -1);
 * ```
 */
export function hwcToChw(rgb: Uint8Array, size: number): Float32Array {
  const plane = size * size;
  if (rgb.length !== plane * 3) {
    throw new InvalidArgumentError(
      `expected ${plane * 3} bytes (${size}×${size}×3 RGB), got ${rgb.length}`,
    );
  }
  const data = new Float32Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) data[c * plane + p] = rgb[3 * p + c] / 127.5 - 1;
  }
  return data;
}
