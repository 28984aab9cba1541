/**
 * The shapes world's caption grammar and its fixed vocabulary.
 *
 * ```
 * caption  := object                              (1 object)
 *           | object relation object              (2 objects)
 *           | object relation object "and" object (3 objects)
 * object   := "a" [size] colour shape
 * relation := "left of" | "right of" | "above" | "below"
 * ```
 *
 * @module
 */
import { InvalidArgumentError } from "../../errors.ts";
import type { ShapeName } from "./draw.ts";

/** Shapes of the world, in a fixed order. */
export const SHAPES: readonly ShapeName[] = ["circle", "square", "triangle"];

/** Colours of the world, in a fixed order. */
export type ColourName = "red" | "green" | "blue" | "yellow";

/** Colours of the world, in a fixed order. */
export const COLOURS: readonly ColourName[] = ["red", "green", "blue", "yellow"];

/** Saturated, pairwise distinct RGB values of the colours (background is black). */
export const COLOUR_RGB: Readonly<Record<ColourName, readonly [number, number, number]>> = {
  red: [255, 0, 0],
  green: [0, 255, 0],
  blue: [0, 0, 255],
  yellow: [255, 255, 0],
};

/** Size classes of objects. */
export type SizeName = "small" | "large";

/** Size classes, in a fixed order. */
export const SIZES: readonly SizeName[] = ["small", "large"];

/** Spatial relation phrases: "A left of B" means A's box lies left of B's box. */
export type RelationName = "left of" | "right of" | "above" | "below";

/** The relations, in a fixed order. */
export const RELATIONS: readonly RelationName[] = ["left of", "right of", "above", "below"];

/**
 * Every word a shapes caption can contain (lower-case), in a fixed order.
 *
 * @example
 * ```ts
 * import { SHAPES_VOCABULARY } from "./caption.ts";
 * console.assert(SHAPES_VOCABULARY.length === 16 && SHAPES_VOCABULARY.includes("triangle"));
 * ```
 */
export const SHAPES_VOCABULARY: string[] = [
  "a",
  "small",
  "large",
  "red",
  "green",
  "blue",
  "yellow",
  "circle",
  "square",
  "triangle",
  "left",
  "right",
  "of",
  "above",
  "below",
  "and",
];

/** What a caption says about one object. */
export interface CaptionObject {
  /** the object's shape word */
  readonly shape: ShapeName;
  /** the object's colour word */
  readonly colour: ColourName;
  /** the object's size class */
  readonly size: SizeName;
  /** whether the caption names the size ("a small red circle") or not ("a red circle") */
  readonly sizeNamed: boolean;
}

/**
 * "a [size] colour shape" for one object.
 *
 * @example
 * ```ts
 * import { describeObject } from "./caption.ts";
 * const text = describeObject({ shape: "circle", colour: "red", size: "small", sizeNamed: true });
 * console.assert(text === "a small red circle");
 * ```
 */
export function describeObject(object: CaptionObject): string {
  return object.sizeNamed
    ? `a ${object.size} ${object.colour} ${object.shape}`
    : `a ${object.colour} ${object.shape}`;
}

/**
 * The caption of 1–3 objects: the first two joined by the relation, the third added with "and".
 *
 * @example
 * ```ts
 * import { shapesCaption } from "./caption.ts";
 * const red = { shape: "circle", colour: "red", size: "large", sizeNamed: false } as const;
 * const blue = { shape: "square", colour: "blue", size: "small", sizeNamed: false } as const;
 * console.assert(shapesCaption([red, blue], "left of") === "a red circle left of a blue square");
 * ```
 */
export function shapesCaption(
  objects: readonly CaptionObject[],
  relation?: RelationName,
): string {
  if (objects.length < 1 || objects.length > 3) {
    throw new InvalidArgumentError(`a caption describes 1 to 3 objects, got ${objects.length}`);
  }
  if (objects.length === 1) return describeObject(objects[0]);
  if (relation === undefined || !RELATIONS.includes(relation)) {
    throw new InvalidArgumentError(
      `${objects.length} objects need a relation (one of ${RELATIONS.join(", ")}), got ${relation}`,
    );
  }
  const pair = `${describeObject(objects[0])} ${relation} ${describeObject(objects[1])}`;
  return objects.length === 2 ? pair : `${pair} and ${describeObject(objects[2])}`;
}
