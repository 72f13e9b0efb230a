#!/usr/bin/env node
// mt-preview: a PNG grid of dataset images beside their two augmented views (spec §7).
//   mt-preview --data-root data/imagenet_train --out grid.png
//   mt-preview --mnist train --size 28 --out mnist.png
import { runPreviewCli } from '../lib/cli/preview';

runPreviewCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`mt-preview: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
