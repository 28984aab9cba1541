/**
 * {@link heatmapPlot}: a Heatmap as a grid of coloured cells with axes, as SVG.
 *
 * @module
 */
import * as Plot from "npm:@observablehq/plot@0.6.17";
import { InvalidArgumentError } from "../errors.ts";
import { applyColormap, type ColormapName } from "../images/colormap.ts";
import type { Heatmap } from "../images/heatmap.ts";
import type { Chart } from "./chart.ts";
import { renderPlot, TITLE_MARGIN } from "./render.ts";
import { formatValue } from "./panels.ts";

/** Largest number of cells drawn (64×64, Stable Diffusion's latent map); one SVG rect each. */
export const MAX_HEATMAP_CELLS = 64 * 64;

/** Options of {@link heatmapPlot}. */
export interface HeatmapPlotOptions {
  /** Title above the chart. */
  title?: string;
  /** Colormap (default `"viridis"`), applied after min–max normalisation. */
  colormap?: ColormapName;
  /** Width in pixels (default 420); the height follows so that cells are square. */
  width?: number;
  /** Unit of the values, printed after the colour bar's maximum (e.g. "nats/px"). */
  unit?: string;
}

/** One drawn cell. */
interface Cell {
  x: number;
  y: number;
  fill: string;
}

/**
 * Draws a map as square cells (row 0 at the top), min–max normalised and coloured with the same
 * lookup table as the PNG output, with a colour bar under it labelled with the map's minimum and
 * maximum (and `unit`). Maps with more
 * than {@link MAX_HEATMAP_CELLS} cells are refused; shrink them with `map.upsample(64, 64)` or use
 * `heatmapToPng`.
 *
 * @throws {InvalidArgumentError} for a map with too many cells
 *
 * @example
 * ```ts
 * import { Heatmap } from "../images/heatmap.ts";
 * import { heatmapPlot } from "./heatmap-plot.ts";
 * const map = new Heatmap(3, 2, new Float32Array([0, 1, 2, 3, 4, 5]));
 * const chart = heatmapPlot(map, { title: "information map", colormap: "magma" });
 * console.assert(chart.svg.includes("information map"));
 * ```
 */
export function heatmapPlot(map: Heatmap, options: HeatmapPlotOptions = {}): Chart {
  if (map.width * map.height > MAX_HEATMAP_CELLS) {
    throw new InvalidArgumentError(
      `heatmapPlot draws at most ${MAX_HEATMAP_CELLS} cells, got ${map.width}×${map.height}; ` +
        "shrink with map.upsample(64, 64) or render with heatmapToPng",
    );
  }
  const rgb = applyColormap(map.normalize(), options.colormap ?? "viridis");
  const cells: Cell[] = [];
  for (let y = 0; y < map.height; y++) {
    for (let x = 0; x < map.width; x++) {
      const i = 3 * (y * map.width + x);
      cells.push({ x, y, fill: `rgb(${rgb[i]},${rgb[i + 1]},${rgb[i + 2]})` });
    }
  }
  const margin = {
    top: options.title ? TITLE_MARGIN : 20,
    right: 20,
    bottom: 40 + COLOUR_BAR_HEIGHT,
    left: 40,
  };
  const width = options.width ?? 420;
  const cellSize = (width - margin.left - margin.right) / map.width;
  const height = Math.round(margin.top + margin.bottom + cellSize * map.height);
  return renderPlot(
    {
      width,
      height,
      marginTop: margin.top,
      marginRight: margin.right,
      marginBottom: margin.bottom,
      marginLeft: margin.left,
      x: {
        domain: range(map.width),
        ticks: sparseTicks(map.width),
        padding: 0,
        label: "x",
        labelOffset: 32,
      },
      y: { domain: range(map.height), ticks: sparseTicks(map.height), padding: 0, label: "y" },
      marks: [Plot.cell(cells, { x: "x", y: "y", fill: (cell: Cell) => cell.fill, inset: 0 })],
    },
    options.title,
    (svg) => {
      const top = height - COLOUR_BAR_HEIGHT,
        left = margin.left,
        barWidth = width - left - margin.right;
      const colours = applyColormap(
        Array.from({ length: BAR_STEPS }, (_, i) => i / (BAR_STEPS - 1)),
        options.colormap ?? "viridis",
      );
      for (let i = 0; i < BAR_STEPS; i++) {
        svg.add("rect", {
          x: left + (i * barWidth) / BAR_STEPS,
          y: top,
          width: barWidth / BAR_STEPS + 0.5, // overlap: no hairline gaps between steps
          height: 10,
          fill: `rgb(${colours[3 * i]},${colours[3 * i + 1]},${colours[3 * i + 2]})`,
        });
      }
      const label = (x: number, anchor: string, text: string) =>
        svg.add("text", {
          x,
          y: top + 24,
          "font-size": 11,
          "text-anchor": anchor,
          fill: "currentColor",
        }, text);
      label(left, "start", formatValue(map.min()));
      label(
        left + barWidth,
        "end",
        formatValue(map.max()) + (options.unit ? ` ${options.unit}` : ""),
      );
    },
  );
}

/** Room under the x axis for the colour bar and its labels, in pixels. */
const COLOUR_BAR_HEIGHT = 34;
/** Steps of the colour bar's ramp. */
const BAR_STEPS = 64;

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** About 8 evenly spaced tick positions, so 64 columns do not print 64 labels. */
function sparseTicks(n: number): number[] {
  const step = Math.max(1, Math.ceil(n / 8));
  return range(n).filter((i) => i % step === 0);
}
