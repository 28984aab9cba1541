/**
 * {@link Figure}: a finished picture (PNG bytes with a text description) that displays itself in
 * Jupyter as `text/plain` + `image/png`, so it shows in Jupyter Lab, VS Code, GitHub's viewer and
 * Jupyter's HTML export alike.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { dirname, extname } from "node:path";
import { InvalidArgumentError } from "../errors.ts";
import { JUPYTER_DISPLAY, type MimeBundle } from "../jupyter.ts";
import { loadSharp } from "../images/sharp.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * A rendered picture: PNG bytes, their size, and what they show in words.
 *
 * @example
 * ```ts
 * import { Figure } from "./figure.ts";
 * import { encodePng } from "../images/encode-png.ts";
 * const figure = new Figure(encodePng(new Uint8Array(2 * 1 * 3), 2, 1), "two black pixels");
 * console.assert(figure.width === 2 && figure.height === 1);
 * ```
 */
export class Figure {
  /** PNG bytes. */
  readonly png: Uint8Array;
  /** Width in pixels (from the PNG header). */
  readonly width: number;
  /** Height in pixels (from the PNG header). */
  readonly height: number;
  /** What the picture shows, in words (its `text/plain` display and alt text). */
  readonly description: string;

  /**
   * Wraps PNG bytes.
   *
   * @throws {InvalidArgumentError} when the bytes are not a PNG file
   */
  constructor(png: Uint8Array, description: string) {
    if (png.length < 24 || PNG_SIGNATURE.some((b, i) => png[i] !== b)) {
      throw new InvalidArgumentError(
        `a figure needs PNG bytes (signature 89 50 4E 47 …), got ${png.length} bytes starting ` +
          `${Array.from(png.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ")}`,
      );
    }
    const header = new DataView(png.buffer, png.byteOffset + 16, 8);
    this.png = png;
    this.width = header.getUint32(0);
    this.height = header.getUint32(4);
    this.description = description;
  }

  /**
   * Rasterises standalone SVG markup (white background) into a figure.
   *
   * @example
   * ```ts
   * import { Figure } from "./figure.ts";
   * const f = await Figure.fromSvg('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="3"/>', "empty");
   * console.assert(f.width === 4 && f.height === 3);
   * ```
   */
  static async fromSvg(svg: string, description: string, scale = 1): Promise<Figure> {
    return new Figure(await rasteriseSvg(svg, scale), description);
  }

  /**
   * Saves the PNG, creating parent folders.
   *
   * @throws {InvalidArgumentError} for a path not ending in `.png`
   *
   * @example
   * ```ts
   * import { Figure } from "./figure.ts";
   * import { encodePng } from "../images/encode-png.ts";
   * const path = await Deno.makeTempDir() + "/figures/dot.png";
   * await new Figure(encodePng(new Uint8Array(3), 1, 1), "a dot").save(path);
   * console.assert((await Deno.stat(path)).size > 0);
   * ```
   */
  async save(path: string): Promise<void> {
    if (extname(path).toLowerCase() !== ".png") {
      throw new InvalidArgumentError(
        `a figure is saved as PNG: the path must end in .png, got "${path}"`,
      );
    }
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeFile(path, this.png);
  }

  /**
   * The description.
   *
   * @example
   * ```ts
   * import { Figure } from "./figure.ts";
   * import { encodePng } from "../images/encode-png.ts";
   * console.assert(String(new Figure(encodePng(new Uint8Array(3), 1, 1), "a dot")) === "a dot");
   * ```
   */
  toString(): string {
    return this.description;
  }

  /**
   * Jupyter rich display: `text/plain` (the description) and `image/png`.
   *
   * @example
   * ```ts
   * import { Figure } from "./figure.ts";
   * import { JUPYTER_DISPLAY } from "../jupyter.ts";
   * import { encodePng } from "../images/encode-png.ts";
   * const bundle = new Figure(encodePng(new Uint8Array(3), 1, 1), "a dot")[JUPYTER_DISPLAY]();
   * console.assert(bundle["text/plain"] === "a dot" && bundle["image/png"].length > 0);
   * ```
   */
  [JUPYTER_DISPLAY](): MimeBundle {
    return pngBundle(this.png, this.description);
  }
}

/**
 * Standalone SVG markup as PNG bytes on a white background, `scale` pixels per SVG unit.
 *
 * @example
 * ```ts
 * import { rasteriseSvg } from "./figure.ts";
 * const png = await rasteriseSvg('<svg xmlns="http://www.w3.org/2000/svg" width="2" height="1"/>', 2);
 * console.assert(new DataView(png.buffer, png.byteOffset + 16, 4).getUint32(0) === 4);
 * ```
 */
export async function rasteriseSvg(svg: string, scale = 1): Promise<Uint8Array> {
  const sharp = await loadSharp();
  // librsvg (inside sharp) renders one SVG unit as one pixel at 72 dpi
  const png = await sharp(Buffer.from(svg), { density: 72 * scale })
    .flatten({ background: "#ffffff" }).png().toBuffer();
  return new Uint8Array(png);
}

/**
 * The display bundle of a PNG: `text/plain` and base64 `image/png`. No SVG: Jupyter's HTML
 * exporter prefers SVG over PNG and its sanitiser strips the attributes (viewBox, fill) that
 * Plot's SVG needs, so a bundle with both shows a blank chart there.
 *
 * @example
 * ```ts
 * import { pngBundle } from "./figure.ts";
 * console.assert(pngBundle(new Uint8Array([1, 2, 3]), "x")["image/png"] === "AQID");
 * ```
 */
export function pngBundle(png: Uint8Array, description: string): MimeBundle {
  return { "text/plain": description, "image/png": Buffer.from(png).toString("base64") };
}
