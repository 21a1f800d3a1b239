#!/usr/bin/env bash
# Runs the commands of docs/ci.md exactly as written, in a small git repository laid out like a
# real project (models, README, code, configs, build output, a .git), and checks the exit codes
# and outputs the page promises. Each command is first looked up in docs/ci.md, so a recipe
# edited there and not here fails this script instead of going untested.
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
doc="$repo_root/docs/ci.md"
cd "$repo_root"

cargo build --locked --quiet --bin picklescan-rs
export PATH="$repo_root/target/debug:$PATH"
export NO_COLOR=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# The command as docs/ci.md writes it (the whole line must be there, after leading spaces and a
# YAML "- " or "run: ").
documented() {
  grep -qF -- "$1" "$doc" || { fail "docs/ci.md no longer contains: $1"; return 1; }
}

# run_doc EXPECTED_CODE COMMAND: run a documented command in the project, check its exit code.
run_doc() {
  local want=$1 cmd=$2
  documented "$cmd" || return 0
  set +e
  (cd "$work/project" && bash -c "$cmd") >"$work/out" 2>"$work/err"
  local got=$?
  set -e
  if [ "$got" != "$want" ]; then
    fail "\`$cmd\` exited $got, expected $want"
    sed 's/^/    /' "$work/out" "$work/err" | head -20
  else
    echo "ok: \`$cmd\` exited $got"
  fi
}

# --- a project: models, code, configs, build output, a .git ----------------------------------
p="$work/project"
mkdir -p "$p/models" "$p/src" "$p/configs" "$p/target/release/build" "$p/notebooks"
cp corpus/benign/array_f32.npy corpus/benign/ordereddict_proto2.pkl corpus/benign/joblib_arrays_zlib.joblib "$p/models/"
cp corpus/benign/checkpoint_namespace.pth "$p/models/checkpoint.pth"
# An in-house class no rule knows: suspicious (PS001) until the team allows it.
printf '\x80\x02cmylib.model\nMyModel\n)\x81.' >"$p/models/custom.pkl"
printf '# demo project\n\nTrains a model.\n' >"$p/README.md"
printf 'import torch\nmodel = torch.load("models/checkpoint.pth", weights_only=True)\n' >"$p/src/train.py"
printf '{"lr": 0.001, "epochs": 3}\n' >"$p/configs/train.json"
printf '[project]\nname = "demo"\nversion = "0.1.0"\n' >"$p/pyproject.toml"
printf '/target/\n' >"$p/.gitignore"
git -C "$p" init -q
git -C "$p" -c user.name=ci -c user.email=ci@example.invalid add -A
git -C "$p" -c user.name=ci -c user.email=ci@example.invalid commit -qm "project"

# --- a real model repository: what the libraries save, and its other files -----------------------
# Models as scikit-learn, torch, TorchScript and pandas save them, beside a README, configs,
# tokenizer files, code and a licence: the documented scan step passes (exit 0).
q="$work/model-repo"
mkdir -p "$q/models"
cp corpus/ecosystem/benign/sklearn/sklearn_RandomForestClassifier.gzip.joblib \
  corpus/ecosystem/benign/torch/torch_checkpoint.pt \
  corpus/ecosystem/benign/torch/torch_module_sequential.pt \
  corpus/ecosystem/benign/torch/torchscript_sequential.pt \
  corpus/ecosystem/benign/pandas/frame.p4.pkl "$q/models/"
cp -R corpus/ecosystem/not-models/repo/. "$q/"
git -C "$q" init -q
git -C "$q" -c user.name=ci -c user.email=ci@example.invalid add -A
git -C "$q" -c user.name=ci -c user.email=ci@example.invalid commit -qm "model"
set +e
(cd "$q" && picklescan-rs --format sarif --no-progress . > results.sarif)
code=$?
set -e
if [ "$code" = 0 ]; then
  echo "ok: the scan step on a real model repository exited 0"
else
  fail "the scan step on a real model repository exited $code, expected 0"
  (cd "$q" && picklescan-rs --no-progress . | grep -v ": clean\|not a model" | head -20)
fi

# --- GitHub Actions: the scan step -----------------------------------------------------------
# models/custom.pkl holds an in-house class: suspicious under the default policy.
run_doc 2 'picklescan-rs --format sarif --no-progress . > results.sarif'
jq -e '.version == "2.1.0" and (.runs[0].results | length) > 0' "$p/results.sarif" >/dev/null ||
  fail "results.sarif is not a SARIF 2.1.0 document with results"
jq -e '[.runs[0].results[].locations[0].physicalLocation.artifactLocation.uri] | all(test("\\.git/") | not)' \
  "$p/results.sarif" >/dev/null || fail "the scan of . walked .git/"

# The exit-code table: --fail-on dangerous lets suspicious files through.
documented '`--fail-on dangerous` turns 2' &&
  (cd "$p" && picklescan-rs --fail-on dangerous --no-progress . >/dev/null) ||
  fail "--fail-on dangerous did not turn exit 2 into 0"

# The note on --exclude 'target/**': build output holding a pickle nobody reviewed is scanned
# (exit 1, .gitignore or not) unless excluded.
cp corpus/malicious/reduce_posix_system_proto2.pkl "$p/target/release/build/cache.pkl"
set +e
(cd "$p" && picklescan-rs --no-progress . >/dev/null)
code=$?
set -e
[ "$code" = 1 ] || fail "an unreviewed pickle under target/ was not caught (exit $code)"
documented "--exclude 'target/**'" && {
  set +e
  (cd "$p" && picklescan-rs --exclude 'target/**' --format json --no-progress . >"$work/ex.json")
  code=$?
  set -e
  [ "$code" = 2 ] || fail "--exclude 'target/**' run exited $code, expected 2"
  jq -e '[.files[].path] | all(test("target/") | not)' "$work/ex.json" >/dev/null ||
    fail "--exclude 'target/**' did not exclude target/"
}
rm "$p/target/release/build/cache.pkl"

# A dangerous model committed: exit 1 and a PS101 result in the SARIF.
cp corpus/malicious/reduce_posix_system_proto2.pkl "$p/models/evil.pkl"
run_doc 1 'picklescan-rs --format sarif --no-progress . > results.sarif'
jq -e '[.runs[0].results[].ruleId] | index("PS101")' "$p/results.sarif" >/dev/null ||
  fail "no PS101 result for models/evil.pkl in results.sarif"
rm "$p/models/evil.pkl"

# --- GitLab: the JSON report of models/ ------------------------------------------------------
run_doc 2 'picklescan-rs --format json --no-progress models/ > picklescan.json'
jq -e '.schema_version == 1 and .summary.files == 5 and .summary.suspicious == 1' \
  "$p/picklescan.json" >/dev/null || fail "picklescan.json: unexpected summary $(jq -c .summary "$p/picklescan.json")"

# --- .picklescan.toml, as docs/ci.md shows it ------------------------------------------------
awk '/^## Configuration: `.picklescan.toml`/{s=1} s&&/^```toml/{f=1;next} f&&/^```/{exit} f' "$doc" >"$p/.picklescan.toml"
grep -q '^policy = ' "$p/.picklescan.toml" || fail "no TOML example under the Configuration heading"
printf '# team rules\n' >"$p/team-rules.toml"
set +e
(cd "$p" && picklescan-rs --no-progress models/ >"$work/out" 2>"$work/err")
code=$?
set -e
[ "$code" = 2 ] || { fail "the documented .picklescan.toml: exit $code, expected 2"; cat "$work/err"; }
# Its suppression matched nothing here: reported, as the page says.
grep -q 'matched no finding' "$work/err" || fail "the unused suppression was not reported"
rm "$p/.picklescan.toml" "$p/team-rules.toml"

# --- Policies: torch-weights-only prints what torch.load(weights_only=True) needs ------------
documented "Under \`torch-weights-only\` each file's report also says" && {
  set +e
  (cd "$p" && picklescan-rs --policy torch-weights-only models/checkpoint.pth >"$work/out")
  code=$?
  set -e
  [ "$code" = 2 ] || fail "--policy torch-weights-only exited $code, expected 2"
  grep -q 'needs torch.serialization.add_safe_globals(\[argparse.Namespace' "$work/out" ||
    fail "--policy torch-weights-only did not print the add_safe_globals list"
}

# --- A wrong path fails the job instead of passing it ----------------------------------------
set +e
(cd "$p" && picklescan-rs --no-progress model/ >/dev/null 2>&1)
code=$?
set -e
[ "$code" = 3 ] || fail "a missing folder exited $code, expected 3"

# --- pre-commit: the hook as .pre-commit-hooks.yaml declares it, in this repository ----------
precommit=""
if command -v pre-commit >/dev/null 2>&1; then
  precommit=pre-commit
elif [ "${CI_RECIPES_PIP:-1}" = 1 ] && python3 -m venv "$work/venv" >/dev/null 2>&1 &&
  "$work/venv/bin/pip" install -q pre-commit >/dev/null 2>&1; then
  precommit="$work/venv/bin/pre-commit"
fi
cp corpus/malicious/reduce_posix_system_proto2.pkl "$p/models/evil.pkl"
git -C "$p" add models/evil.pkl
if [ -n "$precommit" ]; then
  # try-repo runs a hook of a repository (this one, as it stands) on the staged files;
  # picklescan-rs-system uses the binary built above instead of building it again.
  set +e
  (cd "$p" && "$precommit" try-repo "$repo_root" picklescan-rs-system >"$work/out" 2>&1)
  code=$?
  set -e
  if [ "$code" = 0 ] || ! grep -q 'PS101' "$work/out"; then
    fail "the pre-commit hook did not stop a dangerous staged model"
    sed 's/^/    /' "$work/out" | tail -20
  else
    echo "ok: pre-commit try-repo picklescan-rs-system refused models/evil.pkl"
  fi
else
  # Without pre-commit: what it would run, from the hook's own entry and files pattern.
  files_re=$(sed -n 's/^  files: //p' .pre-commit-hooks.yaml | head -1 | sed 's/^(?i)//')
  entry=$(sed -n 's/^  entry: //p' .pre-commit-hooks.yaml | head -1)
  staged=$(git -C "$p" diff --cached --name-only | grep -iE "$files_re" || true)
  [ "$staged" = "models/evil.pkl" ] || fail "the hook's files pattern picked: $staged"
  set +e
  (cd "$p" && $entry $staged >/dev/null)
  code=$?
  set -e
  [ "$code" = 1 ] || fail "the hook's entry on the staged model exited $code, expected 1"
  echo "pre-commit is not installed: the hook's entry and files pattern were run by hand"
fi
git -C "$p" rm -q --cached models/evil.pkl && rm "$p/models/evil.pkl"

# --- action.yml: its scan step, run as the runner would (bash -e, outputs to a file) --------
if python3 -c 'import yaml' 2>/dev/null; then
  python3 - "$repo_root/action.yml" >"$work/scan_step.sh" <<'PY'
import sys, yaml
steps = yaml.safe_load(open(sys.argv[1]))["runs"]["steps"]
print(next(s for s in steps if s.get("id") == "scan")["run"])
PY
  mkdir -p "$work/runner/picklescan-rs/bin"
  ln -sf "$repo_root/target/debug/picklescan-rs" "$work/runner/picklescan-rs/bin/picklescan-rs"
  cp corpus/malicious/reduce_posix_system_proto2.pkl "$p/models/evil.pkl"
  : >"$work/gh_output"
  (cd "$p" && RUNNER_TEMP="$work/runner" GITHUB_OUTPUT="$work/gh_output" SCAN_PATH="models/ src/" \
    SCAN_FORMAT=sarif SCAN_POLICY=strict SCAN_FAIL_ON= SCAN_ARGS="--exclude *.npy" \
    bash --noprofile --norc -eo pipefail "$work/scan_step.sh" >/dev/null) ||
    fail "action.yml's scan step failed itself"
  grep -qx 'code=1' "$work/gh_output" || fail "action.yml: exit code output $(cat "$work/gh_output")"
  report=$(sed -n 's/^report=//p' "$work/gh_output")
  jq -e '([.runs[0].results[].ruleId] | index("PS101")) and
         ([.runs[0].results[].locations[0].physicalLocation.artifactLocation.uri] | all(test("npy$") | not))' \
    "$p/$report" >/dev/null || fail "action.yml: the SARIF report lacks PS101 or has an excluded file"
  rm "$p/models/evil.pkl" "$p/$report"
  echo "ok: action.yml's scan step"
else
  echo "python3 has no yaml module: action.yml's scan step not run"
fi

if [ "$failures" != 0 ]; then
  echo "docs/ci.md recipes: $failures failure(s)"
  exit 1
fi
echo "docs/ci.md recipes: all ok"
