// Development: run the data tests against build-data/ (npx jest -c tools/data/jest.build-data.config.js test/data).
const base = require('../../jest.config.js');
module.exports = {
  ...base,
  rootDir: '../..',
  moduleNameMapper: { '^(.*)/build/Release/m2t\\.node$': '$1/build-data/Release/m2t.node' },
};
