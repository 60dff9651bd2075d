#!/usr/bin/env bash
# One-command, idempotent set-up of the project's environment on a fresh Debian machine:
# ffmpeg and chromium (apt; chromium only runs the analysis.html browser tests), a virtual
# environment in .venv with the pinned stack, audiocraft without its conflicting pins, the madmom
# metadata shim and this package in editable mode.
# A second run only checks a stamp and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'setup failed: %s\n' "$*" >&2; exit 1; }

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq || die "apt-get update failed"
  # Without recommends: chromium's pull in a desktop (systemd, cups, perl) that headless tests skip.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null \
    || die "apt-get install ffmpeg failed"
fi
command -v ffmpeg >/dev/null || die "ffmpeg is not on PATH"
command -v chromium >/dev/null || echo "note: no chromium package here; the analysis.html browser tests will be skipped"

stamp="$VENV/.setup-stamp"
want=$(cat requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml third_party/madmom-metadata/pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "environment up to date ($VENV)"; exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtual environment $VENV"
  "$PY" -m venv "$VENV" || die "could not create $VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
step "installing the pinned stack (first run: ~2 GB download, a few minutes)"
"${PIP[@]}" install -q -r requirements.txt -r requirements-dev.txt || die "pip install -r requirements.txt -r requirements-dev.txt"
step "installing audiocraft without its conflicting pins"
"${PIP[@]}" install -q --no-deps -r requirements-nodeps.txt || die "pip install audiocraft"
step "installing the madmom metadata shim and this package"
"${PIP[@]}" install -q --no-deps ./third_party/madmom-metadata || die "madmom shim"
"${PIP[@]}" install -q --no-deps -e . || die "pip install -e ."
step "checking imports"
"$VENV/bin/python" - <<'PY' || die "an installed package does not import"
import warnings; warnings.filterwarnings("ignore")
import torch, torchaudio, audiocraft, demucs, madmom, pytsmod, librosa, soundfile, lameenc, cog
from audiocraft.models import MusicGen
print("torch", torch.__version__, "| audiocraft", audiocraft.__version__, "| madmom", madmom.__version__)
PY
echo "$want" > "$stamp"
echo "environment ready ($VENV)"
