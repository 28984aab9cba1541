/**
 * Datasets: readers for COCO instances and masks, COCO-IT and ARO in their reference formats, and
 * the shapes world (a ground-truth benchmark that exports to the same formats). Subpath export
 * `@infodiff/infodiff/datasets`.
 *
 * @example
 * ```ts
 * import { shapesWorld } from "./mod.ts";
 * const world = shapesWorld({ seed: 1, count: 4 });
 * console.assert(world.scenes.length === 4);
 * ```
 *
 * @module
 */
export {
  cocoMask,
  type CocoPolygons,
  type CocoRle,
  type CocoSegmentation,
  maskBbox,
  polygonMask,
  rleDecode,
  rleEncode,
  rleFromString,
  rleToString,
} from "./coco-mask.ts";
export {
  categoryMask,
  type CocoAnnotation,
  type CocoCaption,
  type CocoCaptions,
  type CocoCategory,
  type CocoImage,
  type CocoInstances,
  parseCocoCaptions,
  parseCocoInstances,
  readCocoCaptions,
  readCocoInstances,
  writeCocoCaptions,
  writeCocoInstances,
} from "./coco.ts";
export {
  type AroItem,
  type AroReadOptions,
  parseAro,
  readAro,
  type VgAttributionRecord,
  type VgRelationRecord,
  writeAroVg,
} from "./aro.ts";
export {
  type ChangedContext,
  type CocoItRow,
  cocoItRow,
  formatCocoIt,
  parseCocoIt,
  parseCocoItCsv,
  readCocoIt,
  writeCocoIt,
} from "./coco-it.ts";
export { drawShape, type ShapeName } from "./shapes/draw.ts";
export {
  type CaptionObject,
  COLOUR_RGB,
  type ColourName,
  COLOURS,
  describeObject,
  type RelationName,
  RELATIONS,
  SHAPES,
  SHAPES_VOCABULARY,
  shapesCaption,
  type SizeName,
  SIZES,
} from "./shapes/caption.ts";
export {
  boxesApart,
  type CentredBox,
  hwcToChw,
  relationBetween,
  sceneKey,
  type ShapesGeometry,
  shapesGeometry,
  type ShapesObject,
  type ShapesScene,
  type ShapesSplit,
  type ShapesWorld,
  shapesWorld,
  type ShapesWorldOptions,
} from "./shapes/world.ts";
export {
  exportShapesDataset,
  SHAPES_CATEGORIES,
  type ShapesExportSummary,
} from "./shapes/export.ts";
export {
  findObject,
  largestObject,
  paletteLabels,
  type RecognisedObject,
  type RecogniseOptions,
  shapeFromFill,
} from "./shapes/recognise.ts";
