// Loads experiment files with the compiled loader in a plain Node process (jest's module
// system would intercept tsx's require hooks) and prints one JSON result per file.
// Usage: node test/helpers/load-experiments.js [--kind pretrain|linear_eval] FILE...
const path = require('path');
const { loadExperimentFile } = require(path.join(__dirname, '..', '..', 'dist', 'lib', 'experiment-file.js'));
const args = process.argv.slice(2);
let kind;
if (args[0] === '--kind') { kind = args[1]; args.splice(0, 2); }
const out = args.map((file) => {
  try {
    const exp = loadExperimentFile(file, kind);
    return { file, ok: true, kind: exp.kind, config: exp.toJSON(), sources: exp.sources };
  } catch (e) {
    return { file, ok: false, error: { name: e.name, message: e.message, issues: e.issues } };
  }
});
process.stdout.write(JSON.stringify(out));
