// Development helper: makes lib/native.ts load build-data/Release/m2t.node (the data engineer's
// own build directory) instead of build/Release/m2t.node.  node -r ./tools/data/use-build-data.js …
const Module = require('module');
const path = require('path');
const original = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const resolved = original.call(this, request, ...rest);
  const suffix = path.join('build', 'Release', 'm2t.node');
  if (resolved.endsWith(suffix)) return resolved.slice(0, -suffix.length) + path.join('build-data', 'Release', 'm2t.node');
  return resolved;
};
