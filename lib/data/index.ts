// The data layer (spec §7): datasets, view transforms, batch loaders, previews.
//
//   const ds = await Dataset.openFolder('data/imagenet_train');
//   const loader = new PretrainLoader(ds, { batchSize: 256, seed: 0 });
//   for await (const b of loader.epoch(epoch, { startBatch })) {
//     await model.step(b.view1, b.view2, lr);
//     b.release();
//   }
export { Dataset, defaultCacheDir, mnistFiles, stratifiedIndices } from './datasets';
export type { AugmentedView, DatasetInfo, FolderOptions, RawImage, ViewParams } from './datasets';
export {
  IMAGENET_MEAN,
  IMAGENET_STD,
  byolView1,
  byolView2,
  linearEvalTransform,
  validationTransform,
  validateView,
  withOverrides,
  toNativeView,
} from './transforms';
export type { NativeView, Pair, Rgb, ViewOverrides, ViewTransform } from './transforms';
export { EvalLoader, PretrainLoader, epochOrder, warnBadData } from './loader';
export type { BadDataReport, BadFile, EvalBatch, EvalLoaderOptions, LoaderOptions, PretrainBatch, PretrainLoaderOptions } from './loader';
export { renderPreview, writePreview } from './preview';
export type { PreviewGrid, PreviewOptions } from './preview';
export { dataLayerProvider } from './provider';
export type { ProviderOptions } from './provider';
