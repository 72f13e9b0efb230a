#!/usr/bin/env node
// mt-embed: see `mt-embed --help`.
import { runEmbedCli } from '../lib/cli/embed';

runEmbedCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`mt-embed: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
