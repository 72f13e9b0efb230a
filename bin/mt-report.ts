#!/usr/bin/env node
// mt-report: see `mt-report --help`.
import { runReportCli } from '../lib/cli/report';

runReportCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`mt-report: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
