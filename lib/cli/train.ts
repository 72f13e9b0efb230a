// mt-train: Momentum² Teacher pre-training (the reference's tools/train.py).
import { Command } from 'commander';
import type { ProcessGroup } from '../distributed/process-group';
import { PretrainOptions, PretrainRun } from '../pretrain';
import { CommonFlags, addCommonFlags, configureProgram, exitCodeForSignal, handleSignals, parseFlags, quietEpipe, reportError, resumeCommand } from './common';
import { MULTI_PROCESS_HELP, MultiProcessFlags, addMultiProcessFlags, startWorkers } from './workers';

type TrainFlags = CommonFlags & MultiProcessFlags;

const TOOL = 'mt-train';

export function trainProgram(): Command {
  const program = new Command(TOOL)
    .description(
      'Momentum² Teacher self-supervised pre-training.\n\n' +
        'Writes outputs/<experiment-name>/: train_log.txt, metrics.jsonl, config.json and ' +
        'last_epoch_ckpt.safetensors (every epoch; interrupted_ckpt.safetensors when stopped by ' +
        'Ctrl-C/SIGTERM mid-epoch). Continue a stopped run with --resume.',
    )
    .usage('[-f exps/arxiv/exp_8_v100/momentum2_teacher_100e_exp.ts] [-b 256] [-d cpu] [--experiment-name NAME] [options]');
  addCommonFlags(program, TOOL, {
    expFile: 'the base experiment, momentum2_teacher_exp',
    nameHelp: "output folder under --output-dir (alias -expn; default: the experiment file's name)",
    resumeHelp: 'continue from the newest checkpoint of outputs/<experiment-name>/ (or the given file), exactly where it stopped; without -f the experiment comes from the checkpoint',
    dataRootHelp: "training image folder (one sub-folder per class); replaces the experiment's data.train",
  });
  addMultiProcessFlags(program);
  program.addHelpText(
    'after',
    '\nExamples:\n' +
      '  npx mt-train -f exps/arxiv/exp_8_v100/momentum2_teacher_100e_exp.ts -b 1024 -d cpu --experiment-name my_run\n' +
      '  npx mt-train -f exps/arxiv/exp_8_v100/momentum2_teacher_100e_exp.ts --experiment-name my_run --resume\n' +
      '  npx mt-train -f exps/quickstart.ts -d cpu --nproc 2        # two processes on this machine\n' +
      MULTI_PROCESS_HELP,
  );
  return configureProgram(program, TOOL);
}

export function trainOptions(f: CommonFlags): PretrainOptions {
  return {
    experiment: f.exp_file,
    batchSize: f.batchSize,
    devices: f.devices,
    name: f.experimentName,
    scheduler: f.scheduler,
    distUrl: f.distUrl,
    resume: f.resume,
    dataRoot: f.dataRoot,
    outputDir: f.outputDir,
    seed: f.seed,
    verbose: f.verbose,
    console: f.progress === 'none' ? 'silent' : f.progress,
  };
}

/** Runs mt-train with `argv` (without node and script); resolves to the exit code. */
export async function runTrainCli(argv: string[]): Promise<number> {
  quietEpipe();
  const parsed = parseFlags<TrainFlags>(trainProgram(), argv);
  if ('exit' in parsed) return parsed.exit;
  const f = parsed.flags;
  const controller = new AbortController();
  if (f.dryRun) {
    try {
      process.stdout.write(JSON.stringify(new PretrainRun(trainOptions(f)).resolveConfig(), null, 2) + '\n');
      return 0;
    } catch (e) {
      return reportError(TOOL, e, !!f.verbose);
    }
  }
  // Several processes: this invocation either launches this machine's workers or is one of them.
  let processGroup: ProcessGroup | undefined;
  let stopWatching = () => {};
  try {
    const w = await startWorkers({
      tool: TOOL, argv, devices: f.devices, nproc: f.nproc, distUrl: f.distUrl, distTimeout: f.distTimeout, what: 'training',
      check: () => new PretrainRun(trainOptions(f)).resolveConfig(),
      onOrphaned: () => controller.abort('SIGTERM'),
    });
    if ('exit' in w) return w.exit;
    ({ processGroup, stopWatching } = w);
  } catch (e) {
    return reportError(TOOL, e, !!f.verbose);
  }
  const run = new PretrainRun({ ...trainOptions(f), signal: controller.signal, processGroup });
  const signals = handleSignals(TOOL, (sig) => controller.abort(sig));
  try {
    const result = await run.run();
    if (result.interrupted) {
      process.stderr.write(
        `${TOOL}: stopped at iteration ${result.iterations}/${result.totalIterations}; checkpoint ${result.checkpoint}\n` +
          `${TOOL}: continue with: ${resumeCommand(TOOL, result.config.name!, result.config.outputDir)}\n`,
      );
      return signals.received() ? exitCodeForSignal(signals.received()) : 0;
    }
    return 0;
  } catch (e) {
    return reportError(TOOL, e, !!f.verbose);
  } finally {
    signals.dispose();
    stopWatching();
  }
}
