import os
import sys
from pathlib import Path

# Tests import their builders as `fixtures.<area>` and the package from the repo root.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
# Tests never touch the network or the user's weight cache.
os.environ.setdefault("REMIXER_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
