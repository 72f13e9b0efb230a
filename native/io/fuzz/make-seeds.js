// Writes the fuzz seed corpus: small real checkpoints of the models fuzz_checkpoint.cc builds
// (ResNet-18 at width 1/64, small stem), and a few hand-made edge cases. Run by scripts/fuzz.sh
// when the corpus folder is empty; the committed corpus was made with it.
const fs = require('fs');
const path = require('path');
const addon = require(path.join(__dirname, '..', '..', '..', process.env.M2T_ADDON_DIR || 'build/Release', 'm2t.node'));
const out = process.argv[2] || path.join(__dirname, 'corpus');
fs.mkdirSync(out, { recursive: true });
const enc = { arch: 'resnet18', width: 1 / 64, smallStem: true, threads: 1 };
(async () => {
  const m = new addon.Momentum2Teacher({ ...enc, hiddenDim: 8, outDim: 4, totalIterations: 4 });
  const img = new Float32Array(2 * 8 * 8 * 3).map((_, i) => Math.sin(i));
  await m.step(img, [2, 8, 8, 3], img, [2, 8, 8, 3], 0.1);
  await m.save(path.join(out, 'm2t.safetensors'), { 'run.kind': 'pretrain', 'run.iteration': '1' });
  const p = new addon.LinearProbe({ ...enc, numClasses: 3 });
  await p.save(path.join(out, 'probe.safetensors'), { 'run.kind': 'linear_eval' });
  const tiny = (header) => {
    const h = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    return Buffer.concat([len, h]);
  };
  fs.writeFileSync(path.join(out, 'empty.safetensors'), tiny({}));
  fs.writeFileSync(path.join(out, 'meta.safetensors'), tiny({ __metadata__: { 'm2t.state': '{"iteration":1,"optimizer_started":true,"momentum_bn":[]}' } }));
  fs.writeFileSync(path.join(out, 'one.safetensors'), Buffer.concat([tiny({ a: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }), Buffer.alloc(4)]));
})();
