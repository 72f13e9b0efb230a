#!/usr/bin/env node
// mt-export: a pre-trained encoder as torchvision/timm safetensors or ONNX. See `mt-export --help`.
//   mt-export --pretrained outputs/run1/last_epoch_ckpt.safetensors --out resnet50_m2t.safetensors
import { runExportCli } from '../lib/cli/export';

runExportCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`mt-export: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
