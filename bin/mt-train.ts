#!/usr/bin/env node
// mt-train: Momentum² Teacher pre-training. See `mt-train --help`.
import { runTrainCli } from '../lib/cli/train';

runTrainCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`mt-train: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
