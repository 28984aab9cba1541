/**
 * {@link Chart}: a rendered plot as standalone SVG text, with PNG rasterisation (sharp) and Jupyter
 * display.
 *
 * @module
 */
import { dirname, extname } from "node:path";
import { InvalidArgumentError } from "../errors.ts";
import { JUPYTER_DISPLAY, type MimeBundle } from "../jupyter.ts";
import { Figure, pngBundle, rasteriseSvg } from "./figure.ts";

const SVG_NAMESPACE = "http://www.w3.org/2000/svg";

/** Options of {@link Chart.toPNG}. */
export interface ChartPngOptions {
  /** Pixels per SVG unit (default 1: a 640×400 chart gives a 640×400 PNG; 2 for sharper text). */
  scale?: number;
}

/**
 * A rendered chart: standalone SVG (with the SVG namespace declared), its size in pixels and a
 * description. In a Deno Jupyter notebook it displays as PNG with the description as text (see
 * {@link pngBundle} for why not as SVG).
 *
 * @example
 * ```ts
 * import { Chart } from "./chart.ts";
 * const chart = new Chart('<svg width="20" height="10"><rect width="5" height="5"/></svg>');
 * console.assert(chart.width === 20 && chart.svg.includes('xmlns="http://www.w3.org/2000/svg"'));
 * const png = await chart.toPNG();
 * console.assert(png.length > 0);
 * ```
 */
export class Chart {
  /** Standalone SVG markup. */
  readonly svg: string;
  /** Width in pixels (the SVG `width` attribute). */
  readonly width: number;
  /** Height in pixels (the SVG `height` attribute). */
  readonly height: number;
  /** What the chart shows, in words (its title by default). */
  readonly description: string;

  /**
   * Wraps SVG markup; adds `xmlns` when missing so the text is a valid standalone SVG file.
   *
   * @param svg markup of one `<svg>` element with numeric `width` and `height` attributes
   * @param description what it shows (default "chart W×H")
   * @throws {InvalidArgumentError} when the markup is not an `<svg>` element with a size
   */
  constructor(svg: string, description?: string) {
    const openTag = /^\s*<svg\b[^>]*>/.exec(svg)?.[0];
    if (openTag === undefined) {
      throw new InvalidArgumentError(
        `chart markup must start with an <svg> element, got "${svg.slice(0, 40)}…"`,
      );
    }
    const width = Number(/\swidth="([\d.]+)"/.exec(openTag)?.[1]);
    const height = Number(/\sheight="([\d.]+)"/.exec(openTag)?.[1]);
    if (!(width > 0 && height > 0)) {
      throw new InvalidArgumentError(
        `chart <svg> needs positive numeric width and height attributes, got ${openTag}`,
      );
    }
    this.width = width;
    this.height = height;
    this.description = description ?? `chart ${width}×${height}`;
    this.svg = /\sxmlns="/.test(openTag)
      ? svg
      : svg.replace(/<svg\b/, `<svg xmlns="${SVG_NAMESPACE}"`);
  }

  /**
   * Rasterises the chart with sharp on a white background.
   *
   * @param options `scale`: pixels per SVG unit (default 1)
   * @returns PNG bytes of `round(width·scale)`×`round(height·scale)` pixels
   * @throws {InvalidArgumentError} for a non-positive scale
   *
   * @example
   * ```ts
   * import { Chart } from "./chart.ts";
   * const png = await new Chart('<svg width="8" height="4"></svg>').toPNG({ scale: 2 });
   * console.assert(png[1] === 0x50); // PNG signature
   * ```
   */
  async toPNG(options: ChartPngOptions = {}): Promise<Uint8Array> {
    const scale = options.scale ?? 1;
    if (!(scale > 0 && Number.isFinite(scale))) {
      throw new InvalidArgumentError(`PNG scale must be a positive number, got ${scale}`);
    }
    return await rasteriseSvg(this.svg, scale);
  }

  /**
   * The chart as a {@link Figure} (PNG at `scale`, same description).
   *
   * @example
   * ```ts
   * import { Chart } from "./chart.ts";
   * const figure = await new Chart('<svg width="8" height="4"></svg>', "empty").toFigure();
   * console.assert(figure.width === 8 && figure.description === "empty");
   * ```
   */
  async toFigure(options: ChartPngOptions = {}): Promise<Figure> {
    return new Figure(await this.toPNG(options), this.description);
  }

  /**
   * Saves the chart as `.svg` or `.png` (chosen by the extension), creating parent folders.
   *
   * @throws {InvalidArgumentError} for another extension
   *
   * @example
   * ```ts
   * import { Chart } from "./chart.ts";
   * const path = await Deno.makeTempDir() + "/charts/empty.svg";
   * await new Chart('<svg width="8" height="4"></svg>').save(path);
   * console.assert((await Deno.readTextFile(path)).startsWith("<svg"));
   * ```
   */
  async save(path: string): Promise<void> {
    const extension = extname(path).toLowerCase();
    if (extension !== ".svg" && extension !== ".png") {
      throw new InvalidArgumentError(
        `chart path must end in .svg or .png, got "${path}"`,
      );
    }
    await Deno.mkdir(dirname(path), { recursive: true });
    if (extension === ".svg") await Deno.writeTextFile(path, this.svg);
    else await Deno.writeFile(path, await this.toPNG());
  }

  /**
   * The SVG markup.
   *
   * @example
   * ```ts
   * import { Chart } from "./chart.ts";
   * console.assert(String(new Chart('<svg width="1" height="1"></svg>')).startsWith("<svg"));
   * ```
   */
  toString(): string {
    return this.svg;
  }

  /**
   * Jupyter rich display: the description as `text/plain` and the chart as `image/png`.
   *
   * @example
   * ```ts
   * import { Chart } from "./chart.ts";
   * import { JUPYTER_DISPLAY } from "../jupyter.ts";
   * const bundle = await new Chart('<svg width="1" height="1"></svg>', "dot")[JUPYTER_DISPLAY]();
   * console.assert(bundle["text/plain"] === "dot" && bundle["image/png"].length > 0);
   * ```
   */
  async [JUPYTER_DISPLAY](): Promise<MimeBundle> {
    return pngBundle(await this.toPNG(), this.description);
  }
}
