// Loads experiment files (TypeScript or JavaScript) at run time through tsx.
import * as fs from 'fs';
import * as path from 'path';
import Module from 'module';
import { ExperimentError, UserError, errorMessage } from './errors';
import { Experiment, ExperimentKind, displayPath, isExperiment, validateConfig } from './experiment';

const EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json'];
const PACKAGE_NAME = 'momentum2-teacher';

let registered = false;

/** Makes `require` understand TypeScript (tsx) and points `import … from 'momentum2-teacher'`
 *  at this very package (the copy that is running), wherever the experiment file lives. */
function ensureRegistered(): void {
  if (registered) return;
  // tsx's CommonJS API (its typings need moduleResolution node16, so typed by hand here).
  const nodeRequire = Module.createRequire(__filename);
  const tsx = nodeRequire('tsx/cjs/api') as { register: () => () => void };
  tsx.register();
  const self = require.resolve('./index');
  const M = Module as unknown as { _resolveFilename: (req: string, ...rest: unknown[]) => string };
  const original = M._resolveFilename;
  M._resolveFilename = function (request: string, ...rest: unknown[]) {
    if (request === PACKAGE_NAME) return self;
    return original.call(this, request, ...rest);
  };
  registered = true;
}

/** The experiment a file exports. Accepts `export default <experiment>` (or `module.exports =`),
 *  or a named export `exp`. A file exporting a plain configuration object is validated whole. */
export function loadExperimentFile(file: string, expected?: ExperimentKind): Experiment {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) {
    throw new UserError(`experiment file not found: ${file}`);
  }
  if (fs.statSync(abs).isDirectory()) throw new UserError(`experiment file is a directory: ${file}`);
  const ext = path.extname(abs);
  if (!EXTENSIONS.includes(ext)) {
    throw new UserError(`experiment file must be a TypeScript or JavaScript module, or a saved config.json (${EXTENSIONS.join(", ")}): ${file}`);
  }
  if (ext === '.json') return loadJsonExperiment(abs, expected);
  ensureRegistered();
  let mod: Record<string, unknown>;
  try {
    // Node's own require (not a bundler's or test runner's), with tsx's hooks in place.
    mod = Module.createRequire(abs)(abs);
  } catch (e) {
    throw explainLoadError(e, abs);
  }
  let exp: unknown = mod && (mod.default ?? mod.exp ?? mod);
  if (isPlainObjectExport(exp)) {
    const kind = (exp as { kind?: unknown }).kind;
    if (kind !== 'pretrain' && kind !== 'linear_eval') {
      throw new ExperimentError(
        `${displayPath(abs)}: does not export an experiment (expected \`export default pretrainBase.extend({ … })\` or \`linearEvalBase.extend({ … })\`)`,
        abs,
      );
    }
    exp = new Experiment(validateConfig(kind, exp, abs), [abs]);
  }
  if (!isExperiment(exp)) {
    throw new ExperimentError(
      `${displayPath(abs)}: does not export an experiment (expected \`export default pretrainBase.extend({ … })\` or \`linearEvalBase.extend({ … })\`)`,
      abs,
    );
  }
  let result = exp as Experiment;
  if (expected && result.kind !== expected) {
    const tool = expected === 'pretrain' ? 'mt-train' : 'mt-eval';
    const other = expected === 'pretrain' ? 'mt-eval' : 'mt-train';
    throw new UserError(`${displayPath(abs)} is a ${result.kind} experiment; ${tool} needs a ${expected} experiment (run it with ${other})`);
  }
  if (result.config.name === undefined) {
    result = new Experiment(validateConfig(result.kind, { ...result.toJSON(), name: experimentNameOf(abs) }, abs), result.sources);
  }
  return result;
}

/** A resolved configuration saved as JSON (a run's config.json): validated whole. */
function loadJsonExperiment(abs: string, expected?: ExperimentKind): Experiment {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(abs, 'utf8'));
  } catch (e) {
    throw new UserError(`${displayPath(abs)}: not valid JSON: ${errorMessage(e)}`);
  }
  const kind = (value as { kind?: unknown })?.kind;
  if (kind !== 'pretrain' && kind !== 'linear_eval') {
    throw new ExperimentError(`${displayPath(abs)}: not an experiment configuration (no "kind": "pretrain" or "linear_eval")`, abs);
  }
  if (expected && kind !== expected) {
    throw new UserError(`${displayPath(abs)} is a ${kind} experiment; expected a ${expected} experiment`);
  }
  const cfg = validateConfig(kind, value, abs);
  if (cfg.name === undefined) (cfg as { name?: string }).name = experimentNameOf(abs);
  return new Experiment(cfg, [abs]);
}

/** The reference's exp_name: the file's base name without extension. */
export function experimentNameOf(file: string): string {
  return path.basename(file).replace(/\.[^.]+$/, '');
}

function isPlainObjectExport(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !isExperiment(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function explainLoadError(e: unknown, abs: string): Error {
  if (e instanceof ExperimentError) {
    return e.file ? e : new ExperimentError(`${displayPath(abs)}: ${e.message}`, abs, e.issues);
  }
  if (e instanceof Error && (e.name === 'ExperimentError' || e.name === 'UserError')) return e;
  const msg = errorMessage(e);
  const where = displayPath(abs);
  const err = e as { code?: string; errors?: { text: string; location?: { line: number; column: number; file?: string } }[] };
  if (Array.isArray(err.errors) && err.errors.length) {
    // esbuild TransformError: syntax errors.
    const first = err.errors[0];
    const loc = first.location ? `:${first.location.line}:${first.location.column + 1}` : '';
    const out = new UserError(`${where}${loc}: cannot compile the experiment file: ${first.text}`);
    out.stack = (e as Error).stack;
    return out;
  }
  if (e instanceof Error && e.name === 'TransformError') {
    // tsx/esbuild: "Transform failed with N error(s):\n<file>:<line>:<col>: ERROR: <text>"
    const detail = msg.split('\n').find((l) => /ERROR:/.test(l)) ?? msg;
    const m = /^(.*?):(\d+):(\d+): ERROR: (.*)$/.exec(detail);
    const out = new UserError(
      m ? `${displayPath(m[1])}:${m[2]}:${Number(m[3]) + 1}: cannot compile the experiment file: ${m[4]}` : `${where}: cannot compile the experiment file: ${detail}`,
    );
    out.stack = (e as Error).stack;
    return out;
  }
  if (err.code === 'MODULE_NOT_FOUND') {
    const firstLine = msg.split('\n')[0];
    const out = new UserError(`${where}: ${firstLine}`);
    out.stack = (e as Error).stack;
    return out;
  }
  const out = new UserError(`${where}: error while loading the experiment file: ${msg.split('\n')[0]}`);
  out.stack = (e as Error).stack;
  return out;
}
