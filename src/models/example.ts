/**
 * A built-in example: an exact oracle over small pictures of one coloured shape in one of four
 * places, so that the demo, notebooks and benchmarks have a model whose answers are known exactly.
 *
 * @module
 */
import { drawShape } from "../datasets/shapes/draw.ts";
import type { ShapeName } from "../datasets/shapes/draw.ts";
import { COLOUR_RGB } from "../datasets/shapes/caption.ts";
import type { ColourName } from "../datasets/shapes/caption.ts";
import { mixtureDenoiser } from "./mixture.ts";
import type { MixtureComponent, MixtureDenoiser } from "./mixture.ts";

/** The example's prompt: three informative words (red, circle, left) and three that carry nothing. */
export const EXAMPLE_PROMPT = "a red circle on the left";

const PLACES = { left: [0.27, 0.5], right: [0.73, 0.5], top: [0.5, 0.27], bottom: [0.5, 0.73] };

/**
 * The example oracle's denoiser (`exampleOracle` wraps it as a Model): 3 colours × 3 shapes × 4 places (left, right, top, bottom), each a narrow
 * Gaussian around the rendered picture (3×size×size, values in [−1, 1]) carrying its three words.
 *
 * @example
 * ```ts
 * import { exampleDenoiser, EXAMPLE_PROMPT } from "./example.ts";
 * const model = exampleDenoiser();
 * const image = model.sample(EXAMPLE_PROMPT, { seed: 1 });
 * console.assert(image.length === 3 * 16 * 16);
 * ```
 */
export function exampleDenoiser(size = 16, variance = 0.05): MixtureDenoiser {
  const colours: ColourName[] = ["red", "green", "blue"];
  const shapes: ShapeName[] = ["circle", "square", "triangle"];
  const components: MixtureComponent[] = [];
  for (const colour of colours) {
    for (const shape of shapes) {
      for (const [place, [fx, fy]] of Object.entries(PLACES)) {
        const mask = drawShape(shape, size, fx * size, fy * size, size * 0.2);
        const mean = new Float32Array(3 * size * size).fill(-1);
        mask.forEach((inside, p) => {
          if (!inside) return;
          for (let c = 0; c < 3; c++) mean[c * size * size + p] = COLOUR_RGB[colour][c] / 127.5 - 1;
        });
        components.push({ words: [colour, shape, place], mean, variance });
      }
    }
  }
  return mixtureDenoiser({ shape: [3, size, size], components, name: "example oracle (shapes)" });
}
