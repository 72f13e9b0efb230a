// Shared pieces of mt-train and mt-eval: flags, argv aliases, error reporting, signals.
import { Command, InvalidArgumentError, Option } from 'commander';
import { errorMessage, isUserError } from '../errors';
import { SCHEDULERS } from '../schedules';
import { packageVersion } from '../version';

export interface CommonFlags {
  exp_file?: string;
  batchSize?: number;
  devices: string;
  experimentName?: string;
  scheduler?: (typeof SCHEDULERS)[number];
  distUrl?: string;
  resume?: boolean | string;
  dataRoot?: string;
  valRoot?: string;
  outputDir?: string;
  seed?: number;
  dryRun?: boolean;
  progress: 'auto' | 'bar' | 'plain' | 'none';
  verbose?: boolean;
}

export function positiveInt(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v.trim()) || Number(v) < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
    if (!Number.isSafeInteger(Number(v))) throw new InvalidArgumentError(`${name} must be at most 2^53 - 1, got '${v}'`);
    return Number(v);
  };
}

export function nonNegativeInt(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v.trim())) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
    // Above 2^53 - 1 a number is no longer exact: refuse rather than round silently.
    if (!Number.isSafeInteger(Number(v))) throw new InvalidArgumentError(`${name} must be at most 2^53 - 1 = ${Number.MAX_SAFE_INTEGER}, got '${v}'`);
    return Number(v);
  };
}

/** The reference's spellings that commander cannot declare directly. */
export function normalizeArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (const a of argv) {
    if (a === '--') {
      out.push(...argv.slice(argv.indexOf(a)));
      break;
    }
    if (a === '-expn') out.push('--experiment-name');
    else if (a.startsWith('-expn=')) out.push(`--experiment-name=${a.slice(6)}`);
    else if (a === '--exp-file') out.push('--exp_file');
    else if (a.startsWith('--exp-file=')) out.push(`--exp_file=${a.slice(11)}`);
    else out.push(a);
  }
  return out;
}

/** Flags both tools share, in the reference's order, then ours. */
export function addCommonFlags(
  program: Command,
  tool: 'mt-train' | 'mt-eval',
  defaults: { expFile: string; nameHelp: string; resumeHelp: string; dataRootHelp: string },
): Command {
  program
    .option('-f, --exp_file <file>', `experiment file: a TypeScript/JavaScript module exporting an experiment, or a run's saved config.json (default: ${defaults.expFile})`)
    .option('-b, --batch-size <n>', "total batch size over all devices (default: the experiment's batchSize)", positiveInt('--batch-size'))
    .option('-d, --devices <ids>', "devices: GPU ids such as 0-7 or 0,2,5 (one GPU for now, needs the CUDA backend), or 'cpu'", 'cpu')
    .addOption(referenceAlias(new Option('--experiment-name <name>', defaults.nameHelp), '-expn, --experiment-name <name>'))
    .addOption(new Option('--scheduler <name>', "learning-rate schedule (default: the experiment's)").choices(SCHEDULERS as unknown as string[]))
    .option('--dist-url <url>', 'rendezvous address for multi-process runs (tcp://host:port); unused by single-process runs')
    .option('--resume [checkpoint]', defaults.resumeHelp)
    .option('--data-root <dir>', defaults.dataRootHelp);
  if (tool === 'mt-eval') program.option('--val-root <dir>', 'validation image folder (one sub-folder per class); replaces the experiment\'s data.val');
  program
    .option('--output-dir <dir>', "root of the output folders (default: the experiment's outputDir, 'outputs')")
    .option('--seed <n>', "seed of weight init, data order and augmentation (default: the experiment's seed, 0)", nonNegativeInt('--seed'))
    .option('--dry-run', 'print the resolved experiment (after flags) as JSON and exit')
    .addOption(new Option('--progress <mode>', "console output: a progress bar on a terminal ('auto'), 'bar', 'plain' log lines, or 'none'").choices(['auto', 'bar', 'plain', 'none']).default('auto'))
    .option('--verbose', 'more detail, and stack traces on errors');
  return program;
}

/** Commander takes no multi-letter short flags: "-expn" is rewritten by normalizeArgv, and
 *  shown in --help through the option's display flags. */
function referenceAlias(o: Option, display: string): Option {
  o.flags = display;
  return o;
}

export function configureProgram(program: Command, tool: string): Command {
  program
    .version(packageVersion(), '-V, --version', 'print the package version')
    .showHelpAfterError(`(run ${tool} --help for usage)`)
    .configureOutput({
      outputError: (str, write) => write(`${tool}: ${str}`),
    })
    .exitOverride();
  return program;
}

export function reportError(tool: string, e: unknown, verbose: boolean): number {
  const msg = errorMessage(e);
  process.stderr.write(`${tool}: error: ${msg}\n`);
  if (verbose && e instanceof Error && e.stack) {
    process.stderr.write(`${e.stack}\n`);
  } else if (!isUserError(e)) {
    process.stderr.write(`(run with --verbose for the stack trace)\n`);
  }
  return 1;
}

/** SIGINT/SIGTERM: the first asks the run to stop after the current iteration and save;
 *  a second one exits at once. Returns a function that removes the handlers. */
export function handleSignals(tool: string, onStop: (signal: NodeJS.Signals) => void): { dispose: () => void; received: () => NodeJS.Signals | undefined } {
  let received: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (received) {
      process.stderr.write(`\n${tool}: second ${sig}: exiting now without saving\n`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    received = sig;
    process.stderr.write(`\n${tool}: ${sig} received: finishing the current iteration and saving a checkpoint (send it again to exit at once)\n`);
    onStop(sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
    received: () => received,
  };
}

/** The command that continues a stopped run (its experiment comes from the checkpoint). */
export function resumeCommand(tool: string, name: string, outputDir: string): string {
  const q = (v: string) => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  return `npx ${tool} --experiment-name ${q(name)}${outputDir !== 'outputs' ? ` --output-dir ${q(outputDir)}` : ''} --resume`;
}

export function exitCodeForSignal(sig: NodeJS.Signals | undefined): number {
  return sig === 'SIGTERM' ? 143 : 130;
}

/** `mt-train --help | head` closes stdout early: end quietly instead of crashing on EPIPE. */
export function quietEpipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
}

/** Parses argv; returns the flags, or an exit code when commander already handled it (help, bad flag). */
export function parseFlags<T>(program: Command, argv: string[]): { flags: T } | { exit: number } {
  try {
    program.parse(normalizeArgv(argv), { from: 'user' });
  } catch (e) {
    const ce = e as { code?: string; exitCode?: number };
    if (ce.code === 'commander.helpDisplayed' || ce.code === 'commander.help' || ce.code === 'commander.version') return { exit: 0 };
    if (typeof ce.exitCode === 'number') return { exit: ce.exitCode === 0 ? 0 : 2 };
    throw e;
  }
  return { flags: program.opts() as T };
}
