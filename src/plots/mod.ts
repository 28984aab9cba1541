/**
 * Charts (Observable Plot, rendered to SVG without a browser; PNG through sharp on first use) that
 * take results: results never draw themselves. Subpath export `@infodiff/infodiff/plots`.
 *
 * @example
 * ```ts
 * import { informationBars } from "./mod.ts";
 * const chart = informationBars([{ label: "red", nats: 1, se: 0.1 }]);
 * console.assert(chart.svg.startsWith("<svg"));
 * ```
 *
 * @module
 */
export { Chart, type ChartPngOptions } from "./chart.ts";
export {
  type InformationBar,
  informationBars,
  type InformationBarsOptions,
} from "./information-bars.ts";
export { perTokenChart } from "./per-token-chart.ts";
export { heatmapPlot, type HeatmapPlotOptions, MAX_HEATMAP_CELLS } from "./heatmap-plot.ts";
export { scatterPlot, type ScatterPlotOptions, type ScatterPoint } from "./scatter-plot.ts";
export { type GroupedBar, groupedBars, type GroupedBarsOptions } from "./grouped-bars.ts";
export { interventionScatter, localizationChart, pidChart, relationChart } from "./study-charts.ts";
export { Figure, pngBundle } from "./figure.ts";
export { imageGrid, imageStrip, type Panel, type PanelGridOptions } from "./panels.ts";
export { resultTable, type ResultTableOptions, Table, type TableCell } from "./table.ts";
export {
  interventionStrip,
  localizationGallery,
  relationItemsTable,
  type StudyFigureOptions,
} from "./study-figures.ts";
export { labelledOverlay, overlayGrid, type OverlayGridOptions, sharedRange } from "./overlays.ts";
export { type StudyReport, writeStudyReport } from "./report.ts";
