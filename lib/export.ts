// Exports a pre-trained encoder for use outside this package:
//   - 'torchvision': the teacher (or student) encoder as torchvision-named ResNet tensors without
//     `fc` — `resnet50(); model.fc = nn.Identity(); model.load_state_dict(load_file(f))` with
//     strict=True, and timm's `create_model('resnet50', num_classes=0, checkpoint_path=f)`.
//     Refused for encoders torchvision cannot build (a width multiplier, the small stem).
//   - 'safetensors': the same names for any width or stem; the JSON says what was changed.
//   - 'onnx': the encoder as an ONNX graph, NCHW float input → pooled features (lib/onnx.ts).
// Beside the file, `<out>.json` states the architecture and the evaluation transform.
import * as fs from 'fs';
import * as path from 'path';
import { readCheckpoint, type Arch, type StateDict } from './engine';
import { UserError } from './errors';
import { f32, i64, writeSafetensors, type OutTensor } from './safetensors';

export type ExportFormat = 'torchvision' | 'safetensors' | 'onnx';

export interface ExportOptions {
  /** A pre-training checkpoint (last_epoch_ckpt.safetensors …). */
  checkpoint: string;
  /** Output file (.safetensors or .onnx). */
  out: string;
  /** Which encoder. Default 'teacher' (the one the paper evaluates). */
  encoder?: 'teacher' | 'student';
  /** Default 'torchvision'. */
  format?: ExportFormat;
}

/** What `<out>.json` holds. */
export interface EncoderDescription {
  format: ExportFormat;
  file: string;
  arch: Arch;
  /** Channel multiplier (1 = torchvision's ResNet). */
  width: number;
  /** 3x3 stride-1 stem without max pool (not torchvision's). */
  smallStem: boolean;
  /** Pooled feature size (the model's output with fc = Identity). */
  featureDim: number;
  encoder: 'teacher' | 'student';
  source: { checkpoint: string; iteration?: number; epoch?: number };
  /** How to build the model, or why torchvision/timm cannot. */
  torchvision: string | null;
  timm: string | null;
  notes: string[];
  /** Input: RGB, NCHW float32, values (x/255 − mean)/std after resize + centre crop. */
  transform: { resize: number; crop: number; interpolation: 'bilinear'; mean: number[]; std: number[] };
  tensors: number;
}

export interface ExportResult {
  file: string;
  json: string;
  description: EncoderDescription;
}

const BLOCKS: Record<Arch, number[]> = {
  resnet18: [2, 2, 2, 2],
  resnet34: [3, 4, 6, 3],
  resnet50: [3, 4, 6, 3],
  resnet101: [3, 4, 23, 3],
  resnet152: [3, 8, 36, 3],
};

export interface EncoderArch {
  arch: Arch;
  width: number;
  smallStem: boolean;
  featureDim: number;
  bottleneck: boolean;
  blocks: number[];
}

/** The architecture of an encoder, read from its tensor names and shapes (not trusted from metadata). */
export function inferArch(sd: StateDict, prefix: string, file: string): EncoderArch {
  const conv1 = sd[`${prefix}conv1.weight`];
  if (!conv1) throw new UserError(`${file} has no ${prefix}conv1.weight: not a momentum2-teacher pre-training checkpoint with a ${prefix.replace(/_encoder\.$/, '')} encoder`);
  const bottleneck = `${prefix}layer1.0.conv3.weight` in sd;
  const blocks = [1, 2, 3, 4].map((l) => {
    let n = 0;
    while (`${prefix}layer${l}.${n}.conv1.weight` in sd) n++;
    return n;
  });
  const arch = (Object.keys(BLOCKS) as Arch[]).find(
    (a) => BLOCKS[a].every((b, i) => b === blocks[i]) && (a === 'resnet18' || a === 'resnet34') !== bottleneck,
  );
  if (!arch) throw new UserError(`${file}: encoder blocks [${blocks}] (${bottleneck ? 'bottleneck' : 'basic'}) match no ResNet`);
  const stemWidth = conv1.shape[0];
  const width = stemWidth / 64;
  const smallStem = conv1.shape[2] === 3;
  const last = bottleneck ? `${prefix}layer4.${blocks[3] - 1}.conv3.weight` : `${prefix}layer4.${blocks[3] - 1}.conv2.weight`;
  return { arch, width, smallStem, featureDim: sd[last].shape[0], bottleneck, blocks };
}

/** The encoder's tensors under torchvision's names (prefix stripped, `fc.*` dropped), in checkpoint order. */
export function encoderTensors(sd: StateDict, prefix: string): StateDict {
  const out: StateDict = {};
  for (const [k, v] of Object.entries(sd)) {
    if (!k.startsWith(prefix)) continue;
    const name = k.slice(prefix.length);
    if (name.startsWith('fc.')) continue;
    out[name] = v;
  }
  return out;
}

interface RunConfigLike {
  data?: { imageSize?: number; augmentation?: { mean?: number[]; std?: number[] } };
  evaluation?: { resizeSize?: number };
}

/** The evaluation transform of the run that wrote a checkpoint (ImageNet's when it says nothing). */
export function transformFromMetadata(meta: Record<string, string>): EncoderDescription['transform'] {
  let cfg: RunConfigLike = {};
  try {
    cfg = meta['run.config'] ? (JSON.parse(meta['run.config']) as RunConfigLike) : {};
  } catch {
    cfg = {};
  }
  const crop = cfg.data?.imageSize ?? 224;
  // ImageNet's 256 → 224 ratio (0.875) unless the run's evaluation names its resize.
  const resize = cfg.evaluation?.resizeSize ?? Math.round(crop / 0.875);
  return {
    resize,
    crop,
    interpolation: 'bilinear',
    mean: cfg.data?.augmentation?.mean ?? [0.485, 0.456, 0.406],
    std: cfg.data?.augmentation?.std ?? [0.229, 0.224, 0.225],
  };
}

/** Why torchvision's `resnetXX()` cannot hold this encoder, or undefined when it can. */
export function torchvisionIncompatibility(a: EncoderArch): string | undefined {
  const why: string[] = [];
  if (a.width !== 1) why.push(`width ${a.width} (torchvision's ResNets have width 1: ${64 * a.width} stem channels instead of 64)`);
  if (a.smallStem) why.push('the small stem (3x3 stride-1 conv, no max pool; torchvision has a 7x7 stride-2 conv and a max pool)');
  return why.length ? why.join(' and ') : undefined;
}

/** Writes the encoder of `checkpoint` as `out` (+ `out`.json). */
export async function exportEncoder(o: ExportOptions): Promise<ExportResult> {
  const format = o.format ?? 'torchvision';
  if (!['torchvision', 'safetensors', 'onnx'].includes(format)) throw new UserError(`--format must be torchvision, safetensors or onnx, got '${format}'`);
  const encoder = o.encoder ?? 'teacher';
  if (encoder !== 'teacher' && encoder !== 'student') throw new UserError(`--encoder must be teacher or student, got '${encoder}'`);
  if (!fs.existsSync(o.checkpoint)) throw new UserError(`checkpoint not found: ${o.checkpoint}`);
  let ck;
  try {
    ck = await readCheckpoint(o.checkpoint);
  } catch (e) {
    throw new UserError(`cannot read checkpoint ${o.checkpoint}: ${(e as Error).message}`);
  }
  const prefix = `${encoder}_encoder.`;
  const a = inferArch(ck.tensors, prefix, o.checkpoint);
  const bad = torchvisionIncompatibility(a);
  if (format === 'torchvision' && bad) {
    throw new UserError(
      `${o.checkpoint}: the ${encoder} encoder is a ${a.arch} with ${bad}; torchvision's ${a.arch}() cannot load it. ` +
        `Use --format safetensors (same tensor names; the JSON states the architecture) or --format onnx.`,
    );
  }
  const tensors = encoderTensors(ck.tensors, prefix);
  const transform = transformFromMetadata(ck.metadata);
  const file = path.resolve(o.out);
  const notes: string[] = [];
  if (bad) notes.push(`not torchvision's ${a.arch}: ${bad}`);
  if (format === 'onnx') {
    const { writeOnnx } = await import('./onnx');
    writeOnnx(file, tensors, a, { producer: `momentum2-teacher ${encoder} encoder of ${path.basename(o.checkpoint)}` });
    notes.push("ONNX: input 'input' [N, 3, H, W] float32 (normalised RGB), output 'features' [N, featureDim]; opset 17, BatchNormalization in inference mode.");
  } else {
    const out: Record<string, OutTensor> = {};
    for (const [name, t] of Object.entries(tensors)) {
      // PyTorch keeps the BN step counter as int64; the engine holds every tensor as float32.
      out[name] = name.endsWith('num_batches_tracked') ? i64(t.shape, t.data) : f32(t.shape, t.data);
    }
    writeSafetensors(file, out, {
      format: 'pt',
      arch: a.arch,
      width: String(a.width),
      small_stem: String(a.smallStem),
      encoder,
      source: path.basename(o.checkpoint),
    });
  }
  const canTorch = !bad && format !== 'onnx';
  const description: EncoderDescription = {
    format,
    file: path.basename(file),
    arch: a.arch,
    width: a.width,
    smallStem: a.smallStem,
    featureDim: a.featureDim,
    encoder,
    source: {
      checkpoint: path.resolve(o.checkpoint),
      iteration: ck.metadata['run.iteration'] !== undefined ? Number(ck.metadata['run.iteration']) : undefined,
      epoch: ck.metadata['run.epoch'] !== undefined ? Number(ck.metadata['run.epoch']) : undefined,
    },
    torchvision: canTorch ? `m = torchvision.models.${a.arch}(); m.fc = torch.nn.Identity(); m.load_state_dict(safetensors.torch.load_file('${path.basename(file)}'))` : null,
    timm: canTorch ? `timm.create_model('${a.arch}', num_classes=0, checkpoint_path='${path.basename(file)}')` : null,
    notes,
    transform,
    tensors: Object.keys(tensors).length,
  };
  const json = file.replace(/\.(safetensors|onnx)$/i, '') + '.json';
  fs.writeFileSync(json, JSON.stringify(description, null, 2) + '\n');
  return { file, json, description };
}
