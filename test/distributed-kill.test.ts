// kill -9 of one worker, 4 trials (the 10-trial run: `npx tsx tools/distributed/kill-trials.ts`): killed through
// mt-train --nproc 2 and among workers started the torchrun way, rank 0 and rank 1, at a random moment of
// a step; every process of the run is gone within 60 s, non-zero, and the output names the killed rank.
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
