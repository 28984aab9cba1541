/**
 * infodiff: ask a text-to-image diffusion model what it knows. Pointwise and conditional mutual
 * information between an image and a prompt, per pixel and per word, with standard errors
 * (Kong et al., ICLR 2024), on exact oracles and Stable Diffusion ONNX exports.
 *
 * @example
 * ```ts
 * import { exampleOracle, EXAMPLE_PROMPT } from "./mod.ts";
 * const model = exampleOracle();
 * const image = model.sample(EXAMPLE_PROMPT, { seed: 1 });
 * const result = await model.info(image).given(EXAMPLE_PROMPT).samples(20).perToken();
 * console.log(result.toString());
 * ```
 *
 * @module
 */
export * from "./src/errors.ts";
export type {
  Condition,
  ImageInput,
  LogSnrRange,
  Model,
  NoiseBatch,
  Shape,
} from "./src/models/denoiser.ts";
export { checkModelData, shapeSize } from "./src/models/denoiser.ts";
export {
  logSumExp,
  type MixtureComponent,
  type MixtureCondition,
  type MixtureModel,
  mixtureModel,
  type MixtureSpec,
  type SampleOptions,
} from "./src/models/mixture.ts";
export { EXAMPLE_PROMPT, exampleOracle } from "./src/models/example.ts";
export {
  normaliseWord,
  type PromptWord,
  promptWords,
  removeWord,
  type RemoveWordOptions,
} from "./src/text/prompt.ts";
export { Random } from "./src/numerics/random.ts";
export {
  checkLogSnrSampling,
  defaultLogSnrSampling,
  logSnrInterval,
  type LogSnrSampling,
  logSnrWeight,
  REFERENCE_LOG_SNR,
  sampleLogSnr,
} from "./src/numerics/log-snr.ts";
export {
  bootstrap,
  type BootstrapOptions,
  type BootstrapResult,
  type MeanWithError,
  meanWithError,
  pearson,
} from "./src/numerics/statistics.ts";
export { Estimate } from "./src/estimators/estimate.ts";
export {
  type EstimatorName,
  type EstimatorOptions,
  type Progress,
  type ResolvedOptions,
  resolveOptions,
} from "./src/estimators/options.ts";
export {
  type Contrast,
  type ContrastOutcome,
  type ContrastPlan,
  contrastPlan,
  type ContrastResult,
  estimateContrasts,
} from "./src/estimators/contrasts.ts";
export { mutualInformation } from "./src/estimators/mutual-information.ts";
export {
  conditionalInformation,
  type ConditionalOptions,
} from "./src/estimators/conditional-information.ts";
export {
  perTokenInformation,
  type PerTokenOptions,
  perTokenPlan,
  type PerTokenWord,
} from "./src/estimators/per-token.ts";
export { negativeLogLikelihood } from "./src/estimators/log-likelihood.ts";
export {
  LogLikelihood,
  PerPixelResult,
  PerTokenResult,
  type TokenInformation,
} from "./src/estimators/results.ts";
export { createQuery, Query, type QueryDescription } from "./src/query/query.ts";
export { JUPYTER_DISPLAY, type MimeBundle } from "./src/jupyter.ts";
export {
  Heatmap,
  type HeatmapJSON,
  type UpsampleMethod,
  type UpsampleOptions,
} from "./src/images/heatmap.ts";
export { applyColormap, type ColormapName, colormapTable } from "./src/images/colormap.ts";
export { crc32, encodePng } from "./src/images/encode-png.ts";
export {
  type ChwImage,
  chwToRgb,
  type ChwToRgbOptions,
  type HeatmapPngOptions,
  heatmapToPng,
  type OverlayOptions,
  overlayPng,
  type RgbImage,
  rgbToPng,
  writePng,
} from "./src/images/png.ts";
export { Chart, type ChartPngOptions } from "./src/plots/chart.ts";
export {
  type InformationBar,
  informationBars,
  type InformationBarsOptions,
} from "./src/plots/information-bars.ts";
export {
  heatmapPlot,
  type HeatmapPlotOptions,
  MAX_HEATMAP_CELLS,
} from "./src/plots/heatmap-plot.ts";
export {
  scatterPlot,
  type ScatterPlotOptions,
  type ScatterPoint,
} from "./src/plots/scatter-plot.ts";
export { type GroupedBar, groupedBars, type GroupedBarsOptions } from "./src/plots/grouped-bars.ts";
export {
  ClipTokenizer,
  type ClipTokenizerConfig,
  loadTokenizer,
  type TokenizedPrompt,
  type WordPositions,
} from "./src/models/sd/tokenizer.ts";
export { loadModel, type LoadModelOptions } from "./src/models/onnx/load-model.ts";
export type {
  Device,
  OnnxCondition,
  OnnxModel,
  OnnxModelStats,
} from "./src/models/onnx/onnx-model.ts";
export {
  NoiseSchedule,
  type PredictionType,
  type SchedulerConfig,
} from "./src/models/sd/schedule.ts";
export { perTokenChart } from "./src/plots/per-token-chart.ts";
export * from "./src/datasets/shapes/draw.ts";
export * from "./src/datasets/shapes/caption.ts";
export * from "./src/datasets/shapes/world.ts";
export * from "./src/models/shapes-oracle.ts";
export * from "./src/datasets/shapes/export.ts";
export * from "./src/datasets/coco-mask.ts";
export * from "./src/datasets/coco.ts";
export * from "./src/datasets/aro.ts";
export * from "./src/datasets/coco-it.ts";
export {
  partialInformation,
  type PidOptions,
  PidResult,
  type PidTerm,
  type PidTerms,
  type RedundancyMeasure,
  type SpecificRedundancy,
} from "./src/estimators/pid.ts";
export {
  formatProgress,
  runStudy,
  type Shard,
  type StudyFailure,
  type StudyOptions,
  type StudyProgress,
  type StudyRecord,
  type StudyRun,
} from "./src/studies/runner.ts";
export {
  type PidRow,
  pidStudy,
  type PidStudyOptions,
  PidStudyResult,
  type PidStudyRow,
} from "./src/studies/pid-study.ts";
export {
  DDIM_REFERENCE_RANGE,
  ddimBatch,
  type DdimLadder,
  ddimLadder,
  type DdimRequest,
  generate,
  generateFrom,
  type GenerateOptions,
  initialNoise,
  invert,
  type InvertOptions,
  toPixels,
} from "./src/generation/ddim.ts";
export {
  type Correlation,
  intervene,
  interveneOne,
  type InterventionCase,
  interventionId,
  type InterventionItem,
  type InterventionOptions,
  type InterventionRecord,
  InterventionResult,
  type InterventionRow,
  type MethodCorrelations,
} from "./src/studies/intervention.ts";
export * from "./src/studies/iou.ts";
export * from "./src/studies/localization.ts";
export * from "./src/studies/localization-rows.ts";
export * from "./src/studies/localization-result.ts";
export * from "./src/studies/relations.ts";
export * from "./src/studies/relations-result.ts";
export {
  findObject,
  largestObject,
  paletteLabels,
  type RecognisedObject,
  type RecogniseOptions,
  shapeFromFill,
} from "./src/datasets/shapes/recognise.ts";
export {
  addGraphOutputs,
  type AttentionGraph,
  type CrossAttentionLayer,
  crossAttentionLayers,
  readAttentionGraph,
  UNFUSED_EXPORT_HELP,
} from "./src/models/onnx/attention-graph.ts";
export {
  type AttentionLayerMap,
  type AttentionModel,
  type AttentionPrediction,
  predictWithAttention,
  requireAttentionModel,
  supportsAttention,
} from "./src/models/onnx/cross-attention.ts";
export { wordAttention, type WordAttentionOptions } from "./src/attention/word-attention.ts";
export type { EditedUnet } from "./src/models/onnx/onnx-denoiser.ts";
export type { ItemOutput, UnetPrediction } from "./src/models/onnx/unet.ts";
export * from "./src/studies/row-seed.ts";
