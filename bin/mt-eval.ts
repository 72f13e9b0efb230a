#!/usr/bin/env node
// mt-eval: linear evaluation of a pre-trained encoder. See `mt-eval --help`.
import { runEvalCli } from '../lib/cli/eval';

runEvalCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`mt-eval: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
