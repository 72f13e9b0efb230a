// momentum2-teacher: Momentum² Teacher self-supervised learning for Node.js.
//
//   import { pretrain, linearEval, loadExperimentFile, pretrainBase } from 'momentum2-teacher';
//
//   const exp = pretrainBase.extend({ maxEpoch: 100, batchSize: 1024 });
//   const result = await pretrain({ experiment: exp, name: 'my_run', on: { iteration: (e) => … } });
//   const evalResult = await linearEval({ experiment: 'exps/arxiv/linear_eval_exp_byol.ts', name: 'my_run' });

// Experiments: the DSL, the bases, validation, loading files.
export {
  Experiment,
  pretrainBase,
  linearEvalBase,
  m2tBase,
  validateConfig,
  deepMerge,
  isExperiment,
  PretrainSchema,
  LinearEvalSchema,
  DatasetSchema,
} from './experiment';
export type {
  PretrainConfig,
  LinearEvalConfig,
  AnyConfig,
  ConfigOf,
  DatasetConfig,
  DeepPartial,
  EncoderModelConfig,
  PretrainModelConfig,
  ExperimentKind,
  TwoViewAugmentation,
  EvalAugmentation,
} from './experiment';
export { loadExperimentFile, experimentNameOf } from './experiment-file';
export { applyOverrides, resolveExperiment } from './overrides';
export type { ExperimentOverrides, ExperimentInput } from './overrides';

// Runs.
export { pretrain, PretrainRun, resolvePretrainExperiment } from './pretrain';
export type { PretrainOptions, PretrainResult, PretrainEvents, IterationEvent, EpochEvent, StartEvent, PretrainModel } from './pretrain';
export { linearEval, LinearEvalRun, resolveLinearEvalExperiment, evalOutputDir, pretrainedCheckpointPath } from './linear-eval';
export type { LinearEvalOptions, LinearEvalResult, LinearEvalEvents, EvalEvent, BestResult, ProbeModel } from './linear-eval';

// Frozen-feature evaluation (native): linear probe, weighted kNN.
export { evaluateFeatures, knnPredict, logisticRegressionPredict, knnMemory } from './feature-eval';
export type { EvaluationResult, FeatureScores, Features, KnnOptions, LogisticRegressionOptions } from './feature-eval';

// Schedules, checkpoints, devices, logs.
export { makeSchedule, SCHEDULERS, defaultStepEpochs } from './schedules';
export type { Schedule, ScheduleConfig, SchedulerName } from './schedules';
export { FILES, readRunState, readSafetensorsHeader, newestCheckpoint, encodeRunState, decodeRunState } from './checkpoint';
export type { RunState } from './checkpoint';
export { parseDevices, describeDevices } from './devices';
export type { DeviceSpec } from './devices';
export { formatRemaining, MetricsWriter } from './logging';
export type { MetricsOptions } from './logging';

// Using a trained encoder elsewhere: torchvision/timm/ONNX export, embeddings, the run report.
export { exportEncoder } from './export';
export type { ExportOptions, ExportResult, ExportFormat, EncoderDescription } from './export';
export { embed, writeEmbeddings } from './embed';
export type { EmbedOptions, Embeddings } from './embed';
export { writeReport } from './report';
export type { ReportOptions, ReportResult } from './report';

// Errors.
export { UserError, ExperimentError, isUserError } from './errors';

// The engine (native): the M2T step, the linear probe, checkpoint reading.
export { Momentum2Teacher, LinearProbe, readCheckpoint, estimateMemory, backends } from './engine';
export type {
  Arch,
  Device,
  EncoderConfig,
  OptimizerConfig,
  M2TConfig,
  ImageBatch,
  TensorEntry,
  StateDict,
  StepResult,
  Checkpoint,
  LinearProbeConfig,
  EvalResult,
  MemoryEstimate,
  MemoryBreakdown,
  MemoryPlanBytes,
} from './engine';
export { formatMemory } from './memory';

// Data: what the run loops consume, and how to plug in another source.
export { setDataProvider, dataProvider, syntheticPretrainSource, syntheticEvalSource, checkDataset } from './data/epoch-source';
export type { DataProvider, EpochSource, PretrainBatch, LabeledBatch, PretrainSourceOptions, EvalSourceOptions, BadDataReport } from './data/epoch-source';

// The data layer (native decode + augmentation workers): datasets, view transforms, loaders,
// previews. Everything is also under the `data` namespace (data.PretrainBatch is the loader's batch type).
export * as data from './data';
export {
  Dataset,
  PretrainLoader,
  EvalLoader,
  byolView1,
  byolView2,
  linearEvalTransform,
  validationTransform,
  withOverrides,
  epochOrder,
  dataLayerProvider,
  renderPreview,
  writePreview,
  mnistFiles,
  defaultCacheDir,
  IMAGENET_MEAN,
  IMAGENET_STD,
} from './data';
export type {
  DatasetInfo,
  FolderOptions,
  RawImage,
  ViewTransform,
  ViewOverrides,
  LoaderOptions,
  PretrainLoaderOptions,
  EvalLoaderOptions,
  EvalBatch,
  PreviewOptions,
} from './data';

// Several processes: the group (Gloo all-reduce over TCP) a model or a pre-training run takes as
// `processGroup`, and the rank context of a launched or torchrun/Slurm-started process.
export { ProcessGroup } from './distributed/process-group';
export type { ProcessGroupOptions } from './distributed/process-group';
export { resolveRole, parseDistUrl } from './distributed/context';
export type { RankContext, Role, Rendezvous } from './distributed/context';
