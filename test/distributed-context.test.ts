// Rank context from flags and environment: the reference's MACHINE/MACHINE_TOTAL + --dist-url, torchrun's
// and Slurm's variables; a launcher's workers resolve to the same contexts an outside launcher would give.
import { DEFAULT_DIST_TIMEOUT_S, parseDistTimeout, parseDistUrl, resolveDistTimeoutMs, resolveRole, workerEnv, type Role } from '../lib/distributed/context';

const worker = (r: Role) => {
  if (r.kind !== 'worker') throw new Error(`expected a worker, got ${JSON.stringify(r)}`);
  return r.context;
};

describe('parseDistUrl', () => {
  test.each([
    ['tcp://10.1.2.3:23456', { host: '10.1.2.3', port: 23456 }],
    ['tcp://node-01.cluster:29500/', { host: 'node-01.cluster', port: 29500 }],
    ['tcp://[::1]:8000', { host: '::1', port: 8000 }],
  ])('%s', (url, want) => expect(parseDistUrl(url)).toEqual(want));
  test.each(['10.1.2.3:23456', 'tcp://host', 'tcp://host:0', 'tcp://host:70000', 'http://h:1', ''])('refuses %p', (url) => {
    expect(() => parseDistUrl(url)).toThrow(/--dist-url/);
  });
});

describe('the group timeout (--dist-timeout, M2T_DIST_TIMEOUT)', () => {
  test('flag over environment over the default, which leaves a hung rank found well within 60 s', () => {
    expect(DEFAULT_DIST_TIMEOUT_S).toBeLessThanOrEqual(30);
    expect(resolveDistTimeoutMs(undefined, {})).toBe(DEFAULT_DIST_TIMEOUT_S * 1000);
    expect(resolveDistTimeoutMs(undefined, { M2T_DIST_TIMEOUT: '' })).toBe(DEFAULT_DIST_TIMEOUT_S * 1000);
    expect(resolveDistTimeoutMs(undefined, { M2T_DIST_TIMEOUT: '7.5' })).toBe(7500);
    expect(resolveDistTimeoutMs(2, { M2T_DIST_TIMEOUT: '7.5' })).toBe(2000);
    expect(parseDistTimeout('600')).toBe(600);
    expect(parseDistTimeout('.25')).toBe(0.25);
  });

  test('bad values are errors naming the flag or variable', () => {
    for (const v of ['0', '-1', 'abc', '1e3', '90000', '5s']) expect(() => parseDistTimeout(v)).toThrow(/--dist-timeout must be a number of seconds/);
    expect(() => resolveDistTimeoutMs(undefined, { M2T_DIST_TIMEOUT: 'x' })).toThrow(/environment variable M2T_DIST_TIMEOUT must be/);
  });
});

describe('resolveRole', () => {
  test('one device, no environment: a single process', () => {
    expect(worker(resolveRole({ localDevices: 1, env: {} }))).toMatchObject({ rank: 0, worldSize: 1, source: 'single' });
  });

  test('several local devices: a launcher for one machine on loopback', () => {
    expect(resolveRole({ localDevices: 4, env: {} })).toEqual({
      kind: 'launcher', machine: 0, machines: 1, localWorkers: 4, worldSize: 4, master: { host: '127.0.0.1', port: 29500 },
    });
  });

  test('the reference\'s two machines of 8: ranks 8..15 on machine 1', () => {
    const role = resolveRole({ localDevices: 8, distUrl: 'tcp://10.0.0.1:23456', env: { MACHINE: '1', MACHINE_TOTAL: '2' } });
    if (role.kind !== 'launcher') throw new Error('launcher expected');
    expect(role.worldSize).toBe(16);
    const ranks = [...Array(8).keys()].map((i) => worker(resolveRole({ localDevices: 8, env: workerEnv(role, i) })));
    expect(ranks.map((c) => c.rank)).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect(ranks.map((c) => c.localRank)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const c of ranks) expect(c).toMatchObject({ worldSize: 16, localWorldSize: 8, master: { host: '10.0.0.1', port: 23456 } });
  });

  test('several machines without --dist-url, or MACHINE out of range, name what is wrong', () => {
    expect(() => resolveRole({ localDevices: 8, env: { MACHINE: '0', MACHINE_TOTAL: '2' } })).toThrow(/--dist-url/);
    expect(() => resolveRole({ localDevices: 8, distUrl: 'tcp://h:1', env: { MACHINE: '2', MACHINE_TOTAL: '2' } }))
      .toThrow(/MACHINE=2 is not below MACHINE_TOTAL=2/);
    expect(() => resolveRole({ localDevices: 8, env: { MACHINE_TOTAL: 'two' } })).toThrow(/MACHINE_TOTAL='two'/);
  });

  test('torchrun variables make this process one rank', () => {
    const c = worker(resolveRole({ localDevices: 1, env: {
      RANK: '5', WORLD_SIZE: '8', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '4', MASTER_ADDR: 'n0', MASTER_PORT: '1234' } }));
    expect(c).toEqual({ rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4, master: { host: 'n0', port: 1234 }, source: 'torchrun' });
    expect(() => resolveRole({ localDevices: 1, env: { RANK: '8', WORLD_SIZE: '8', MASTER_ADDR: 'n0' } })).toThrow(/RANK=8 is not below WORLD_SIZE=8/);
    expect(() => resolveRole({ localDevices: 1, env: { RANK: '1', WORLD_SIZE: '2' } })).toThrow(/MASTER_ADDR/);
    expect(() => resolveRole({ localDevices: 1, env: { RANK: '1' } })).toThrow(/both RANK and WORLD_SIZE/);
    expect(() => resolveRole({ localDevices: 1, env: { RANK: '-1', WORLD_SIZE: '2', MASTER_ADDR: 'n0' } })).toThrow(/RANK='-1'/);
  });

  test('Slurm variables, with the master from --dist-url', () => {
    const c = worker(resolveRole({ localDevices: 4, distUrl: 'tcp://head:29501', env: {
      SLURM_PROCID: '6', SLURM_NTASKS: '8', SLURM_LOCALID: '2', SLURM_NTASKS_PER_NODE: '4(x2)' } }));
    expect(c).toEqual({ rank: 6, worldSize: 8, localRank: 2, localWorldSize: 4, master: { host: 'head', port: 29501 }, source: 'slurm' });
    expect(() => resolveRole({ localDevices: 4, env: { SLURM_PROCID: '0', SLURM_NTASKS: '2' } })).toThrow(/MASTER_ADDR.*--dist-url/);
  });

  test('torchrun variables win over Slurm ones (torchrun inside an allocation)', () => {
    const c = worker(resolveRole({ localDevices: 1, env: {
      RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: 'a', SLURM_PROCID: '0', SLURM_NTASKS: '1' } }));
    expect(c.source).toBe('torchrun');
  });
});
