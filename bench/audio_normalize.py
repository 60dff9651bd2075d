"""Loudness normalization: :func:`remixer.audio.normalize` against audiocraft's ``normalize_audio``.

Synthesises ``--minutes`` of stereo 32 kHz music-like audio (a chord progression over noise, a
quiet intro so the BS.1770 gates matter) and times, alternating run by run so machine load hits
both alike:

* ``ours``: ``normalize(wav, 32000, "loudness")`` (numpy/scipy BS.1770-4 meter);
* ``audiocraft``: ``normalize_audio(tensor, strategy="loudness", sample_rate=32000)``
  (torchaudio's ``Loudness``), the call ``audio_write`` makes.

Prints the median of ``--runs`` runs for each, the ratio, and how far apart the two outputs and
their measured loudness are (they must agree: same gain, same clamp). Target: ours < 1 s for
3 minutes on the project's 2-core machine.

Usage: ``python bench/audio_normalize.py [--minutes 3] [--runs 5]``. Writes nothing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from audiocraft.data.audio_utils import normalize_audio  # noqa: E402

from fixtures.audio import chord, noise  # noqa: E402
from remixer.audio import loudness_lufs, normalize  # noqa: E402

SAMPLE_RATE = 32_000


def synth_music(minutes: float) -> np.ndarray:
    """Stereo chords (C, G, Am, F; two seconds each) over noise, with a quiet first 10 s."""
    bar = 2 * SAMPLE_RATE
    chords = [(261.63, 329.63, 392.0), (196.0, 246.94, 293.66), (220.0, 261.63, 329.63),
              (174.61, 220.0, 261.63)]
    n_bars = int(minutes * 60 * SAMPLE_RATE) // bar
    wav = np.concatenate([chord(bar, SAMPLE_RATE, chords[i % 4]) for i in range(n_bars)], axis=1)
    wav += noise(wav.shape[1], amplitude=0.02)
    wav[:, : 10 * SAMPLE_RATE] *= 0.05
    return wav * 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    wav = synth_music(args.minutes)
    tensor = torch.from_numpy(wav)
    ours_s, theirs_s = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        ours = normalize(wav, SAMPLE_RATE, "loudness")
        ours_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = normalize_audio(tensor, strategy="loudness", sample_rate=SAMPLE_RATE).numpy()
        theirs_s.append(time.perf_counter() - start)

    ours_med, theirs_med = statistics.median(ours_s), statistics.median(theirs_s)
    print(f"audio: {args.minutes:g} min stereo {SAMPLE_RATE} Hz, input "
          f"{loudness_lufs(wav, SAMPLE_RATE):.2f} LUFS; {args.runs} runs, medians; "
          f"torch threads {torch.get_num_threads()}")
    print(f"ours (remixer.audio.normalize)        {ours_med:8.3f} s")
    print(f"audiocraft (normalize_audio)          {theirs_med:8.3f} s")
    print(f"speed-up audiocraft / ours            {theirs_med / ours_med:8.1f} x")
    print(f"outputs: max |ours - audiocraft| = {np.abs(ours - theirs).max():.2e}; loudness "
          f"{loudness_lufs(ours, SAMPLE_RATE):.3f} vs "
          f"{loudness_lufs(theirs, SAMPLE_RATE):.3f} LUFS")


if __name__ == "__main__":
    main()
