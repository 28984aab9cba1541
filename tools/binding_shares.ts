/**
 * Where a word's per-pixel information lies, relative to a shapes scene's objects: the sums and
 * shares `measure_binding` reports (issue 28) and `measure_binding_ceiling` computes for the
 * exact one-object world, one definition for both.
 *
 * @module
 */
import type { ShapesScene } from "../src/datasets/shapes/world.ts";
import { COLOURS } from "../src/datasets/shapes/caption.ts";
import { bootstrap } from "../src/numerics/statistics.ts";
import type { Heatmap } from "../src/images/heatmap.ts";

/** One word's map summed over its own object, the other objects and the whole image. */
export interface WordSums {
  readonly scene: number;
  readonly word: string;
  readonly kind: "colour" | "shape";
  readonly objects: number;
  readonly own: number;
  readonly others: number;
  /** own object's mask grown by {@link BORDER_PX} px, less the other objects' masks */
  readonly ownNear: number;
  /** the background farther than {@link BORDER_PX} px from every object */
  readonly far: number;
  readonly total: number;
}

/**
 * The border counted as "near" an object, in pixels (Chebyshev distance): one latent cell of a 2×2
 * space-to-depth model, two pixels of a pixel-space one. Per-pixel maps concentrate on objects'
 * outlines (seen 2026-12-06 in shapes-flow's maps; why is untested: perhaps there a word tells
 * whether a noisy pixel is the object's), and a 2 px cell straddles the outline.
 */
export const BORDER_PX = 2;

/** The mask grown by `radius` pixels (Chebyshev distance). */
function grow(mask: Uint8Array, size: number, radius: number): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (!mask[y * size + x]) continue;
      for (let dy = Math.max(0, y - radius); dy <= Math.min(size - 1, y + radius); dy++) {
        for (let dx = Math.max(0, x - radius); dx <= Math.min(size - 1, x + radius); dx++) {
          out[dy * size + dx] = 1;
        }
      }
    }
  }
  return out;
}

/** Σ map · (share of each map cell the mask covers): the map may be coarser than the mask. */
function maskedSum(map: Heatmap, mask: Uint8Array, size: number): number {
  const f = size / map.width;
  if (!Number.isInteger(f) || map.height * f !== size) {
    throw new Error(`a ${map.width}×${map.height} map does not tile a ${size} px mask`);
  }
  let sum = 0;
  for (let y = 0; y < map.height; y++) {
    for (let x = 0; x < map.width; x++) {
      let covered = 0;
      for (let a = 0; a < f; a++) {
        for (let b = 0; b < f; b++) covered += mask[(y * f + a) * size + x * f + b];
      }
      sum += map.data[y * map.width + x] * covered / (f * f);
    }
  }
  return sum;
}

export function wordSums(scene: ShapesScene, word: string, map: Heatmap): WordSums {
  const kind = (COLOURS as readonly string[]).includes(word) ? "colour" : "shape";
  const own = scene.objects.findIndex((o) => (kind === "colour" ? o.colour : o.shape) === word);
  const size = scene.size;
  const grown = scene.objects.map((o) => grow(o.mask, size, BORDER_PX));
  let others = 0;
  const otherMasks = new Uint8Array(size * size), near = new Uint8Array(size * size);
  scene.objects.forEach((o, i) => {
    if (i !== own) others += maskedSum(map, o.mask, size);
    for (let p = 0; p < near.length; p++) {
      near[p] |= grown[i][p];
      if (i !== own) otherMasks[p] |= o.mask[p];
    }
  });
  const ownNear = grown[own].map((v, p) => v & ~otherMasks[p] & 1);
  return {
    scene: scene.id,
    word,
    kind,
    objects: scene.objects.length,
    own: maskedSum(map, scene.objects[own].mask, size),
    others,
    ownNear: maskedSum(map, ownNear, size),
    far: maskedSum(map, near.map((v) => 1 - v), size),
    total: map.data.reduce((s, v) => s + v, 0),
  };
}

export interface Share {
  readonly share: number;
  readonly se: number;
  readonly words: number;
  readonly scenes: number;
}

/** Σ part / Σ total over the rows, with its bootstrap SE over scenes. */
export function share(
  rows: readonly WordSums[],
  part: "own" | "others" | "ownNear" | "far",
): Share {
  const scenes = [...new Set(rows.map((r) => r.scene))];
  const byScene = scenes.map((id) => rows.filter((r) => r.scene === id));
  const ratio = (indices: ArrayLike<number>) => {
    let p = 0, t = 0;
    for (let i = 0; i < indices.length; i++) {
      for (const r of byScene[indices[i]]) (p += r[part]), (t += r.total);
    }
    return p / t;
  };
  const all = Int32Array.from(scenes.keys());
  const se = scenes.length >= 2 ? bootstrap(scenes.length, ratio, { seed: 0 }).se : NaN;
  return { share: ratio(all), se, words: rows.length, scenes: scenes.length };
}
