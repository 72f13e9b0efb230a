// mt-eval: linear evaluation of a pre-trained teacher encoder (the reference's tools/eval.py).
import { Command } from 'commander';
import type { ProcessGroup } from '../distributed/process-group';
import { LinearEvalOptions, LinearEvalRun } from '../linear-eval';
import { CommonFlags, addCommonFlags, configureProgram, exitCodeForSignal, handleSignals, parseFlags, quietEpipe, reportError, resumeCommand } from './common';
import { MULTI_PROCESS_HELP, MultiProcessFlags, addMultiProcessFlags, startWorkers } from './workers';

const TOOL = 'mt-eval';

interface EvalFlags extends CommonFlags, MultiProcessFlags {
  pretrained?: string;
}

export function evalProgram(): Command {
  const program = new Command(TOOL)
    .description(
      'Linear evaluation: trains a Linear+BatchNorm1d classifier on the frozen teacher encoder of a ' +
        'pre-training run and reports top-1/top-5 every eval interval.\n\n' +
        'Reads outputs/<experiment-name>/last_epoch_ckpt.safetensors; writes ' +
        'outputs/<experiment-name>/<prefix>linear_eval_teacher/ (prefix byol_ for the BYOL setting): ' +
        'eval_log.txt, metrics.jsonl, config.json, last_epoch_ckpt.safetensors, best_ckpt.safetensors.',
    )
    .usage('-f exps/arxiv/linear_eval_exp_byol.ts --experiment-name NAME [-b 256] [-d cpu] [options]');
  addCommonFlags(program, TOOL, {
    expFile: 'linear_eval_exp (MoCo setting)',
    nameHelp: 'the pre-training run to evaluate: its folder under --output-dir (alias -expn)',
    resumeHelp: 'continue the linear evaluation from its newest checkpoint (or the given file); without -f the experiment comes from the checkpoint',
    dataRootHelp: "training image folder (one sub-folder per class); replaces the experiment's data.train",
  });
  program.option('--pretrained <checkpoint>', 'pre-training checkpoint to evaluate (default: outputs/<experiment-name>/last_epoch_ckpt.safetensors)');
  addMultiProcessFlags(program);
  program.addHelpText(
    'after',
    '\nExamples:\n' +
      '  npx mt-eval -f exps/arxiv/linear_eval_exp_byol.ts -b 256 -d cpu --experiment-name my_run\n' +
      '  npx mt-eval -f exps/arxiv/linear_eval_exp.ts --experiment-name my_run --data-root data/train --val-root data/val\n' +
      '  npx mt-eval -f exps/arxiv/linear_eval_exp_byol.ts --experiment-name my_run -d cpu --nproc 2   # two processes\n' +
      MULTI_PROCESS_HELP,
  );
  return configureProgram(program, TOOL);
}

export function evalOptions(f: EvalFlags): LinearEvalOptions {
  return {
    experiment: f.exp_file,
    batchSize: f.batchSize,
    devices: f.devices,
    name: f.experimentName,
    scheduler: f.scheduler,
    distUrl: f.distUrl,
    resume: f.resume,
    dataRoot: f.dataRoot,
    valRoot: f.valRoot,
    outputDir: f.outputDir,
    seed: f.seed,
    pretrained: f.pretrained,
    verbose: f.verbose,
    console: f.progress === 'none' ? 'silent' : f.progress,
  };
}

export async function runEvalCli(argv: string[]): Promise<number> {
  quietEpipe();
  const parsed = parseFlags<EvalFlags>(evalProgram(), argv);
  if ('exit' in parsed) return parsed.exit;
  const f = parsed.flags;
  const controller = new AbortController();
  if (f.dryRun) {
    try {
      process.stdout.write(JSON.stringify(new LinearEvalRun(evalOptions(f)).resolveConfig(), null, 2) + '\n');
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
      tool: TOOL, argv, devices: f.devices, nproc: f.nproc, distUrl: f.distUrl, distTimeout: f.distTimeout, what: 'linear evaluation',
      check: () => new LinearEvalRun(evalOptions(f)).resolveConfig(),
      onOrphaned: () => controller.abort('SIGTERM'),
    });
    if ('exit' in w) return w.exit;
    ({ processGroup, stopWatching } = w);
  } catch (e) {
    return reportError(TOOL, e, !!f.verbose);
  }
  const run = new LinearEvalRun({ ...evalOptions(f), signal: controller.signal, processGroup });
  const signals = handleSignals(TOOL, (sig) => controller.abort(sig));
  try {
    const result = await run.run();
    if (result.interrupted) {
      process.stderr.write(
        `${TOOL}: stopped at iteration ${result.iterations}; checkpoint ${result.checkpoint}\n` +
          `${TOOL}: continue with: ${resumeCommand(TOOL, result.config.pretrainName!, result.config.outputDir)}\n`,
      );
      return signals.received() ? exitCodeForSignal(signals.received()) : 0;
    }
    if (result.best) {
      process.stdout.write(`best top-1 ${result.best.top1.toFixed(2)}  top-5 ${result.best.top5.toFixed(2)}  (epoch ${result.best.epoch})\n`);
    }
    return 0;
  } catch (e) {
    return reportError(TOOL, e, !!f.verbose);
  } finally {
    signals.dispose();
    stopWatching();
  }
}
