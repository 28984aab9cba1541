/**
 * How a study brings an image of its dataset to the model, one code path for the localization,
 * relation and intervention studies: the pixels as stored (no EXIF rotation: the reference opens
 * images with PIL, which does not turn them, and COCO masks and Visual Genome boxes are drawn on
 * the stored pixels), resized to the model's size with the study's `fit` — `"fill"` with Pillow's
 * kernel of the reference's protocol, `"cover"` a centre crop — before `model.prepare` sees them.
 *
 * @module
 */
import {
  type ImageFit,
  type ImageSource,
  loadImagePixels,
  resizedImage,
  type ResizeKernel,
} from "../images/load-image.ts";
import { type Denoiser, imageArray, type ImageInput } from "../models/denoiser.ts";

/**
 * A dataset image as the study hands it to `model.prepare`: resized to the model's image size
 * (`model.imageSize`, else its data size) with `fit` and `kernel`, EXIF orientation ignored. With
 * `pixels`, CHW pixels in [−1, 1] at the model's data size (for pixel-space oracles, whose
 * `prepare` takes only arrays). An array (bare, `{ pixels }` or `{ data }`) is handed on unchanged.
 *
 * @example
 * ```ts
 * import { datasetImage } from "./dataset-image.ts";
 * import { mixtureModel } from "../query/oracles.ts";
 * const model = mixtureModel({ shape: [3, 8, 8], components: [{ words: ["x"], mean: new Array(192).fill(0), variance: 1 }] });
 * const pixels = await datasetImage(model, "fixtures/images/test-16.png", { fit: "fill", kernel: "linear", pixels: true });
 * console.assert(pixels instanceof Float32Array && pixels.length === 3 * 8 * 8);
 * ```
 */
export async function datasetImage(
  model: Denoiser,
  source: ImageInput,
  options: { readonly fit: ImageFit; readonly kernel: ResizeKernel; readonly pixels?: boolean },
): Promise<ImageInput> {
  if (imageArray(source)) return source; // an array, bare or tagged: nothing to load
  const image = source as ImageSource;
  if (options.pixels) {
    const [, height, width] = model.shape;
    return await loadImagePixels(image, width, height, options.fit, options.kernel, "stored");
  }
  const target = model.imageSize ?? { width: model.shape[2], height: model.shape[1] };
  return await resizedImage(
    image,
    target.width,
    target.height,
    options.fit,
    options.kernel,
    "stored",
  );
}
