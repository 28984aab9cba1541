/**
 * infodiff: ask a text-to-image diffusion model what it knows. Pointwise and conditional mutual
 * information between an image and a prompt, per pixel and per word, with standard errors
 * (Kong et al., ICLR 2024), on exact oracles and Stable Diffusion ONNX exports.
 *
 * This is the one import a notebook needs. Native code loads only when used: onnxruntime on the
 * first `loadModel`, sharp (libvips) on the first image decode or PNG. Narrower entry points:
 * `./onnx`, `./studies`, `./plots`, `./datasets`.
 *
 * @example
 * ```ts
 * import { exampleOracle, EXAMPLE_PROMPT } from "./mod.ts";
 * const model = exampleOracle();
 * const image = model.sample(EXAMPLE_PROMPT, { seed: 1 });
 * const result = await model.info(image).given(EXAMPLE_PROMPT).samples(20).perToken();
 * console.assert(result.tokens.length === 6);
 * ```
 *
 * @module
 */
export {
  DatasetError,
  describeError,
  InfoDiffError,
  InvalidArgumentError,
  InvalidImageError,
  ModelLoadError,
  ModelRuntimeError,
  PromptError,
  ResultsFileError,
} from "./src/errors.ts";
export { displayBundle, escapeHtml, JUPYTER_DISPLAY, type MimeBundle } from "./src/jupyter.ts";
export { VERSION } from "./src/version.ts";
export { setWarningHandler, warn, type WarningHandler } from "./src/warnings.ts";
export { checkSeed, Random } from "./src/numerics/random.ts";
export {
  checkLogSnrSampling,
  defaultLogSnrSampling,
  logSnrAtQuantile,
  logSnrInterval,
  type LogSnrRange,
  type LogSnrSampling,
  logSnrWeight,
  REFERENCE_LOG_SNR,
  REFERENCE_UNCLIPPED_LOG_SNR,
  sampleLogSnr,
} from "./src/numerics/log-snr.ts";
export {
  checkProfile,
  type ContrastProfile,
  DEFENSIVE_SHARE,
  fittedProposal,
  logisticProposal,
  type LogSnrProfile,
  type LogSnrProposal,
  proposalFor,
  type ResolvedProposal,
  trainingLawProposal,
} from "./src/numerics/proposal.ts";
export {
  calibrateProfile,
  type CalibrationOptions,
  type CalibrationRow,
} from "./src/estimators/calibrate.ts";
export {
  contrastProfileNames,
  planProposal,
  profileMasses,
} from "./src/estimators/contrast-profile.ts";
export {
  folderProfile,
  PROFILE_FILE,
  readProfile,
  writeProfile,
} from "./src/models/profile-file.ts";
export {
  bootstrap,
  type BootstrapOptions,
  type BootstrapResult,
  type Interval,
  type MeanWithError,
  meanWithError,
  pearson,
  skewCorrectedInterval,
  studentQuantile,
} from "./src/numerics/statistics.ts";
export {
  type Correlation,
  imageCorrelation,
  type MethodCorrelations,
  methodCorrelations,
} from "./src/numerics/correlations.ts";
export {
  normaliseWord,
  type PromptWord,
  promptWords,
  removeWord,
  type RemoveWordOptions,
  replacePhrase,
  type ReplacePhraseOptions,
} from "./src/text/prompt.ts";
export {
  type AttentionLayerMap,
  type AttentionPrediction,
  checkModelData,
  type Condition,
  type CrossAttention,
  type CutWord,
  type Denoiser,
  type ImageInput,
  type ModelIdentity,
  modelIdentity,
  type NoiseBatch,
  type PromptTokens,
  type Shape,
  shapeSize,
  type TrainedSchedule,
  type WordTokens,
} from "./src/models/denoiser.ts";
export {
  logSumExp,
  type MixtureComponent,
  type MixtureCondition,
  type MixtureDenoiser,
  mixtureDenoiser,
  type MixtureSpec,
  type SampleOptions,
} from "./src/models/mixture.ts";
export {
  calculateShift,
  checkFlowConvention,
  type FlowBatch,
  type FlowConvention,
  flowConvention,
  flowLogSnr,
  flowLogSnrRange,
  flowPredictNoise,
  flowScale,
  type FlowScheduler,
  flowSchedulerConfig,
  flowTime,
  type FlowTrainingLaw,
  noiseFromVelocity,
  schedulerShift,
  shiftTime,
  trainingLawLogSnr,
  velocityFromNoise,
} from "./src/models/flow.ts";
export {
  type FlowOracle,
  flowOracle,
  type FlowOracleSpec,
  mixtureVelocity,
} from "./src/models/flow-oracle.ts";
export { EXAMPLE_PROMPT, exampleDenoiser } from "./src/models/example.ts";
export {
  SHAPES_ORACLE_VARIANCE,
  type ShapesDenoiser,
  shapesDenoiser,
  type ShapesOracleOptions,
} from "./src/models/shapes-oracle.ts";
export {
  ClipTokenizer,
  type ClipTokenizerConfig,
  loadTokenizer,
  type PromptTokenizer,
  type TokenizedPrompt,
  type WordPositions,
} from "./src/models/sd/tokenizer.ts";
export {
  loadT5Tokenizer,
  T5Tokenizer,
  type T5TokenizerOptions,
} from "./src/models/sd/t5-tokenizer.ts";
export {
  betasFromConfig,
  type InferenceSpacing,
  NoiseSchedule,
  type PredictionType,
  rescaleZeroTerminalSnr,
  type SchedulerConfig,
  type TimestepSpacing,
  vToEpsilon,
  ZERO_SNR_TERMINAL_ALPHA_BAR,
} from "./src/models/sd/schedule.ts";
export { hashModelFolder, MODEL_PARTS } from "./src/models/sd/identity.ts";
export {
  checkDevice,
  type Device,
  DEVICES,
  type EditedUnet,
  type OnnxCondition,
  type OnnxDenoiser,
  type OnnxModelStats,
} from "./src/models/onnx/onnx-model.ts";
export { Estimate } from "./src/estimators/estimate.ts";
export {
  checkDesign,
  checkEstimator,
  checkPositiveInteger,
  checkPrecision,
  checkSamples,
  type EstimatorName,
  type EstimatorOptions,
  ESTIMATORS,
  MAX_BLOCK_BYTES,
  MAX_SAMPLES,
  type PrecisionTarget,
  type Progress,
  type ResolvedOptions,
  resolveOptions,
} from "./src/estimators/options.ts";
export {
  type CallSchedule,
  callSchedule,
  type Contrast,
  type ContrastOutcome,
  type ContrastPlan,
  contrastPlan,
  type ContrastResult,
  designUnits,
  estimateContrasts,
  standardError,
} from "./src/estimators/contrasts.ts";
export {
  DEFAULT_DRAW_DESIGN,
  DRAW_DESIGNS,
  type DrawBlock,
  drawBlocks,
  type DrawDesign,
  type DrawPlan,
  drawsPerLogSnr,
  modelDrawBlocks,
  noisyData,
} from "./src/estimators/draws.ts";
export { mutualInformation, mutualInformationPlan } from "./src/estimators/mutual-information.ts";
export {
  conditionalInformation,
  type ConditionalOptions,
  conditionalPlan,
  refuseTruncated,
} from "./src/estimators/conditional-information.ts";
export {
  perTokenInformation,
  type PerTokenOptions,
  perTokenPlan,
  type PerTokenWord,
} from "./src/estimators/per-token.ts";
export { likelihoodPlan, negativeLogLikelihood } from "./src/estimators/log-likelihood.ts";
export {
  type LikelihoodMeasure,
  LogLikelihood,
  PerPixelResult,
  PerTokenResult,
  type TokenInformation,
} from "./src/estimators/results.ts";
export { type Provenance, withProvenance } from "./src/estimators/provenance.ts";
export type { PromptTruncation } from "./src/estimators/truncation.ts";
export {
  type CandidateSet,
  partialInformation,
  pidEstimatorOptions,
  type PidForm,
  type PidOptions,
  pidPlan,
  PidResult,
  type PidTerm,
  type PidTerms,
  type RedundancyMeasure,
  type SpecificRedundancy,
} from "./src/estimators/pid.ts";
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
  heunBatch,
  KARRAS_HEUN_STEPS,
  KARRAS_RHO,
  type KarrasHeunOptions,
  karrasLevels,
} from "./src/generation/karras-heun.ts";
export {
  checkSolver,
  FLOW_SOLVERS,
  FLOW_STEPS,
  flowBatch,
  flowGenerate,
  flowInvert,
  type FlowOdeOptions,
  type FlowSolver,
  flowTimes,
  requireFlow,
} from "./src/generation/flow-ode.ts";
export {
  predictWithAttention,
  requireAttention,
  supportsAttention,
} from "./src/attention/capability.ts";
export {
  ATTENTION_GATHERING,
  type AttentionDrawOptions,
  type AttentionGathering,
  REFERENCE_ATTENTION_DRAWS,
  REFERENCE_ATTENTION_SAMPLES,
  sampledAttentionOptions,
  wordAttention,
  type WordAttentionOptions,
} from "./src/attention/word-attention.ts";
export {
  type AttentionProvider,
  MODEL_ATTENTION,
  studyAttention,
} from "./src/attention/provider.ts";
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
  type ColourRange,
  type HeatmapPngOptions,
  heatmapToPng,
  type OverlayOptions,
  overlayPng,
  type RgbImage,
  rgbToPng,
  writePng,
} from "./src/images/png.ts";
export { arrayToNpy, heatmapToNpy } from "./src/images/npy.ts";
export { type ImageIdentity, imageIdentity, imageSha256 } from "./src/images/image-identity.ts";
export { type ImageFit, readImagePixels, type ResizeKernel } from "./src/images/load-image.ts";
export {
  createQuery,
  Query,
  QUERY_TERMINALS,
  type QueryDescription,
  type QueryPlan,
  type QueryTerminal,
} from "./src/query/query.ts";
export {
  createModel,
  isModel,
  type Model,
  type ModelGenerateOptions,
  type ModelInvertOptions,
  type ModelVerbs,
} from "./src/query/model.ts";
export {
  exampleOracle,
  type MixtureModel,
  mixtureModel,
  type ShapesOracle,
  shapesOracle,
} from "./src/query/oracles.ts";
export { loadModel, type OnnxModel } from "./src/query/load-model.ts";
export {
  type DownloadProgress,
  type HubModel,
  type HubOptions,
  missingModelFiles,
  resolveHubModel,
} from "./src/models/hub/resolve.ts";
export {
  hubCacheDir,
  type HubEnvironment,
  type HubModelSpec,
  parseHubSpec,
} from "./src/models/hub/cache.ts";

export {
  type AroItem,
  type AroReadOptions,
  boxesApart,
  type CaptionObject,
  categoryMask,
  type CentredBox,
  type ChangedContext,
  type CocoAnnotation,
  type CocoCaption,
  type CocoCaptions,
  type CocoCategory,
  type CocoImage,
  type CocoInstances,
  type CocoItRow,
  cocoItRow,
  cocoMask,
  type CocoPolygons,
  type CocoRle,
  type CocoSegmentation,
  COLOUR_RGB,
  type ColourName,
  COLOURS,
  describeObject,
  drawShape,
  exportShapesDataset,
  findObject,
  formatCocoIt,
  hwcToChw,
  largestObject,
  maskBbox,
  paletteLabels,
  parseAro,
  parseCocoCaptions,
  parseCocoInstances,
  parseCocoIt,
  parseCocoItCsv,
  polygonMask,
  readAro,
  readCocoCaptions,
  readCocoInstances,
  readCocoIt,
  type RecognisedObject,
  type RecogniseOptions,
  relationBetween,
  type RelationName,
  RELATIONS,
  rleDecode,
  rleEncode,
  rleFromString,
  rleToString,
  sceneKey,
  shapeFromFill,
  type ShapeName,
  SHAPES,
  SHAPES_CATEGORIES,
  SHAPES_VOCABULARY,
  shapesCaption,
  type ShapesExportSummary,
  type ShapesGeometry,
  shapesGeometry,
  type ShapesObject,
  type ShapesScene,
  type ShapesSplit,
  type ShapesWorld,
  shapesWorld,
  type ShapesWorldOptions,
  type SizeName,
  SIZES,
  type VgAttributionRecord,
  type VgRelationRecord,
  writeAroVg,
  writeCocoCaptions,
  writeCocoInstances,
  writeCocoIt,
} from "./src/datasets/mod.ts";
export {
  type Accuracy,
  ARO_MIN_ATTRIBUTE_ITEMS,
  ARO_SYMMETRIC_RELATIONS,
  aroItemId,
  ATTENTION_METHODS,
  type AttentionDraws,
  binomialAccuracy,
  checkShard,
  type CocoItLocalizationDataset,
  cocoItRows,
  type CocoLocalizationDataset,
  cocoRows,
  contentId,
  describeStudy,
  type Environment,
  estimatorOptions,
  estimatorSettings,
  formatMergeReport,
  formatProgress,
  type GlobalThreshold,
  type GroundTruth,
  headerDifferences,
  type IdPart,
  imageIdPart,
  interveneOne,
  INTERVENTION_SAMPLES,
  type InterventionCase,
  interventionId,
  type InterventionItem,
  interventionPrompts,
  type InterventionRecord,
  InterventionResult,
  type InterventionResultJSON,
  type InterventionRow,
  type InterventionSampler,
  interventionStudy,
  type InterventionStudyOptions,
  type InterventionSummary,
  iou,
  LOCALIZATION_METHODS,
  type LocalizationDataset,
  type LocalizationMaps,
  type LocalizationMethod,
  type LocalizationRecord,
  LocalizationResult,
  type LocalizationResultInit,
  type LocalizationResultJSON,
  type LocalizationRow,
  localizationRows,
  localizationStudy,
  type LocalizationStudyOptions,
  type LocalizationSummaryRow,
  type MacroAccuracy,
  macroAccuracy,
  type MergeReport,
  mergeResults,
  type NatsWithError,
  numberRepeats,
  optionKind,
  PAPER_LOCALIZATION_METHODS,
  PAPER_THRESHOLDS,
  parseShard,
  type PidRow,
  pidRowId,
  pidStudy,
  type PidStudyOptions,
  PidStudyResult,
  type PidStudyResultJSON,
  type PidStudyRow,
  type PidStudyTerm,
  readResults,
  type RelationRecord,
  RelationsResult,
  type RelationsResultJSON,
  relationStudy,
  type RelationStudyOptions,
  resultFromFile,
  RESULTS_FORMAT,
  type ResultsContent,
  ResultsFile,
  type ResultsHeader,
  rowSeed,
  type RunOptions,
  runOptions,
  runStudy,
  selectGlobalThreshold,
  shapesLocalizationRows,
  type Shard,
  shardFromEnvironment,
  type StudyDescription,
  type StudyFailure,
  type StudyOptions,
  type StudyProgress,
  type StudyRecord,
  type StudyResult,
  type StudyRun,
  thresholdIous,
  withContentIds,
  writeAtomically,
} from "./src/studies/mod.ts";
export {
  Chart,
  type ChartPngOptions,
  Figure,
  type GroupedBar,
  groupedBars,
  type GroupedBarsOptions,
  heatmapPlot,
  type HeatmapPlotOptions,
  imageGrid,
  imageStrip,
  type InformationBar,
  informationBars,
  type InformationBarsOptions,
  interventionScatter,
  interventionStrip,
  labelledOverlay,
  localizationChart,
  localizationGallery,
  MAX_HEATMAP_CELLS,
  overlayGrid,
  type OverlayGridOptions,
  type Panel,
  type PanelGridOptions,
  perTokenChart,
  pidChart,
  pngBundle,
  relationChart,
  relationItemsTable,
  resultTable,
  type ResultTableOptions,
  scatterPlot,
  type ScatterPlotOptions,
  type ScatterPoint,
  sharedRange,
  type StudyFigureOptions,
  type StudyReport,
  Table,
  type TableCell,
  writeStudyReport,
} from "./src/plots/mod.ts";
export type { LoadModelOptions } from "./src/models/onnx/load-model.ts";
