// Runs an ONNX model in onnxruntime-node in a plain Node process (under jest, the addon's typed
// arrays come from another realm and onnxruntime-common's instanceof checks reject them).
//   node ort-run.js model.onnx input.f32 N,C,H,W   → stdout: JSON {inputNames, outputNames, dims, data: base64 f32}
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inputFile, dimsText] = process.argv.slice(2);
  const buf = fs.readFileSync(inputFile);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const dims = dimsText.split(',').map(Number);
  const s = await ort.InferenceSession.create(model);
  const y = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, dims) });
  const t = y[s.outputNames[0]];
  const d = t.data;
  process.stdout.write(JSON.stringify({
    inputNames: s.inputNames, outputNames: s.outputNames, dims: t.dims,
    data: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64'),
  }));
}
main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
