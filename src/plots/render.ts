/**
 * Renders Observable Plot specifications to {@link Chart}s without a browser, using linkedom's
 * DOM. Shared by the chart functions in this folder.
 *
 * @module
 */
import * as Plot from "npm:@observablehq/plot@0.6.17";
import { parseHTML } from "npm:linkedom@0.18.15";
import { InvalidArgumentError } from "../errors.ts";
import { Chart } from "./chart.ts";

const SVG_NAMESPACE = "http://www.w3.org/2000/svg";

/**
 * Room above the plot frame that a titled chart's specification leaves (for the y axis label);
 * the title itself gets its own band above the plot ({@link TITLE_BAND}).
 *
 * @example
 * ```ts
 * import { TITLE_MARGIN } from "./render.ts";
 * console.assert(TITLE_MARGIN >= 20);
 * ```
 */
export const TITLE_MARGIN = 30;

/**
 * Height of the band a title adds above the rendered plot, in pixels: the plot moves down by it,
 * so a long title never overlaps the y axis label.
 *
 * @example
 * ```ts
 * import { TITLE_BAND } from "./render.ts";
 * console.assert(TITLE_BAND >= 20);
 * ```
 */
export const TITLE_BAND = 28;

/** The DOM document type Plot expects (Deno has no DOM types of its own). */
type PlotDocument = NonNullable<Plot.PlotOptions["document"]>;

/**
 * `aria-description` of the SVG group holding ±2 SE error bars (lets tests and screen readers find
 * them).
 *
 * @example
 * ```ts
 * import { ERROR_BAR_DESCRIPTION } from "./render.ts";
 * console.assert(ERROR_BAR_DESCRIPTION === "error bars: ±2 standard errors");
 * ```
 */
export const ERROR_BAR_DESCRIPTION = "error bars: ±2 standard errors";

/** Appends SVG elements to a rendered plot (for what Plot cannot draw: a continuous colour bar). */
export interface SvgBuilder {
  /** appends `<tag attributes…>text</tag>` to the chart's `<svg>` */
  add(tag: string, attributes: Record<string, string | number>, text?: string): void;
}

let sharedDocument: PlotDocument | undefined;

/** One linkedom document serves every plot: Plot only creates detached elements in it. */
function plotDocument(): PlotDocument {
  if (sharedDocument === undefined) {
    // linkedom's types describe a browser Window; at run time it has a `document`.
    const window = parseHTML("<!DOCTYPE html><html><body></body></html>") as unknown as {
      document: PlotDocument;
    };
    sharedDocument = window.document;
  }
  return sharedDocument;
}

/**
 * Renders a Plot specification to a Chart, adding `title` as bold SVG text centred in a band of
 * {@link TITLE_BAND} px above the plot (Plot's own `title` option wraps the chart in an HTML
 * `<figure>`, which is not SVG); the chart is that much taller than the specification.
 * Legends are not supported: continuous ones need a canvas, categorical ones are HTML.
 *
 * @throws {InvalidArgumentError} when Plot produced something other than a single `<svg>`
 *
 * @example
 * ```ts
 * import * as Plot from "npm:@observablehq/plot@0.6.17";
 * import { renderPlot } from "./render.ts";
 * const chart = renderPlot({ marginTop: 40, marks: [Plot.dot([[1, 2]])] }, "one dot");
 * console.assert(chart.svg.includes("one dot"));
 * ```
 */
export function renderPlot(
  options: Plot.PlotOptions,
  title?: string,
  decorate?: (svg: SvgBuilder) => void,
): Chart {
  const document = plotDocument();
  const node = Plot.plot({ ...options, document });
  if (node.tagName.toLowerCase() !== "svg") {
    throw new InvalidArgumentError(
      `Plot rendered a <${node.tagName.toLowerCase()}>, expected a single <svg>; ` +
        "drop legend, title, subtitle and caption options",
    );
  }
  decorate?.({
    add(tag, attributes, text) {
      const element = document.createElementNS(SVG_NAMESPACE, tag);
      for (const [name, value] of Object.entries(attributes)) {
        element.setAttribute(name, String(value));
      }
      if (text !== undefined) element.textContent = text;
      node.appendChild(element);
    },
  });
  if (title !== undefined && title !== "") {
    const width = Number(node.getAttribute("width")), height = Number(node.getAttribute("height"));
    const shifted = document.createElementNS(SVG_NAMESPACE, "g");
    shifted.setAttribute("transform", `translate(0,${TITLE_BAND})`);
    for (const child of [...node.childNodes]) {
      if ((child as { tagName?: string }).tagName?.toLowerCase() !== "style") {
        shifted.appendChild(child);
      }
    }
    node.appendChild(shifted);
    node.setAttribute("height", String(height + TITLE_BAND));
    node.setAttribute("viewBox", `0 0 ${width} ${height + TITLE_BAND}`);
    const text = document.createElementNS(SVG_NAMESPACE, "text");
    text.setAttribute("x", String(width / 2));
    text.setAttribute("y", "20");
    text.setAttribute("text-anchor", "middle");
    text.setAttribute("font-size", "14");
    text.setAttribute("font-weight", "bold");
    text.textContent = title;
    node.appendChild(text);
  }
  node.setAttribute("xmlns", SVG_NAMESPACE);
  return new Chart(node.outerHTML, title || undefined);
}
