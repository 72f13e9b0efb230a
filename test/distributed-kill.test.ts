// kill -9 of one worker, 4 trials, and SIGSTOP (a hung worker), 2 trials (the 10-trial runs:
// `npx tsx tools/distributed/kill-trials.ts [--signal STOP]`): through mt-train --nproc 2 and among workers
// started the torchrun way, at a random moment of a step; every process of the run is gone within 60 s
// (a stopped torchrun-style worker aside: the trial kills it, as torchrun would), non-zero, and the output
// names the killed or stopped rank.
import { killTrials } from '../tools/distributed/kill-trials';
import { dataLayerBuilt, requireDist } from './helpers/dist';

(dataLayerBuilt() ? test : test.skip)('kill -9 of one rank: every rank exits within 60 s naming it, 4 of 4 trials', async () => {
  requireDist(['bin/mt-train.js']);
  const log: string[] = [];
  const trials = await killTrials({ trials: 4, log: (s) => log.push(s) });
  expect(trials.map((t) => `${t.mode} rank ${t.killedRank}`)).toEqual(['launcher rank 0', 'env rank 0', 'launcher rank 1', 'env rank 1']);
  for (const t of trials) {
    expect({ trial: t.trial, problems: t.problems }).toEqual({ trial: t.trial, problems: [] });
    expect(t.exitMs).toBeLessThan(60000);
  }
}, 600000);

// A stopped rank keeps its connections open: only the group timeout (--dist-timeout, 5 s here) notices it.
// The launcher then finds it stopped, kills it and names it; a torchrun-style survivor names it in its error.
(dataLayerBuilt() ? test : test.skip)('SIGSTOP of one rank (hung): the others exit within the group timeout naming it, 2 of 2 trials', async () => {
  requireDist(['bin/mt-train.js']);
  const trials = await killTrials({ trials: 2, signal: 'STOP', distTimeout: 5 });
  expect(trials.map((t) => `${t.mode} rank ${t.killedRank} ${t.signal}`)).toEqual(['launcher rank 0 STOP', 'env rank 0 STOP']);
  for (const t of trials) {
    expect({ trial: t.trial, problems: t.problems }).toEqual({ trial: t.trial, problems: [] });
    // The 5 s timeout, a ping interval and the exit; the 30 s default (or a 60 s one) would not fit.
    expect(t.exitMs).toBeGreaterThanOrEqual(4000);
    expect(t.exitMs).toBeLessThan(20000);
  }
}, 300000);
