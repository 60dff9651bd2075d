"""Chord extraction time of a whole song: our batched BTC pipeline against the reference's chunked one.

Synthesises ``--minutes`` of 44.1 kHz stereo chords (random triads) and a full-size 170-class
BTC with random weights (the same compute as ``btc_model_large_voca.pt``), warms it, then times,
alternating run by run so machine load hits both alike:

* ``ours``: ``ChordRecognizer.recognize`` — mono mix, resample, the same 10 s chunks in ONE
  batched CQT call (plus one for the last, shorter chunk), all 108-frame windows in one batch,
  segments;
* ``reference``: the original pipeline's structure on the same model — CQT of consecutive 10 s
  chunks concatenated, pad by ``108 − frames % 108``, one window at a time (batch 1), segments
  with 10/108 s frames.

Prints medians of ``--runs`` runs of each (wall and process CPU seconds; CPU time shows the
work when other jobs share the cores), their ratios, our per-stage split and how often both give
the same label (sampled every 50 ms; 100 %: the features and frame times are the published ones). Target: ours < 1.5 s for 3 minutes on the project's 2-core machine.

Usage: ``python bench/chords.py [--minutes 3] [--runs 5] [--threads N]``. Writes nothing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from btc.features import BINS_PER_OCTAVE, HOP_LENGTH, N_BINS, SAMPLE_RATE, cqt_features  # noqa: E402
from btc.labels import ChordSegment  # noqa: E402
from btc.recognizer import ChordRecognizer  # noqa: E402
from devtools.tiny.btc import published_state_dict, random_progression, synth_progression  # noqa: E402

RATE = 44100
CHUNK_SECONDS = 10.0
REFERENCE_FRAME_SECONDS = 10.0 / 108


def reference_frame_labels(recognizer: ChordRecognizer, wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Frame indices the way the reference computes them: 10 s CQT chunks, batch-1 windows."""
    mono = librosa.resample(wav.mean(axis=0), orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    chunk = int(CHUNK_SECONDS * SAMPLE_RATE)
    pieces = [mono[i:i + chunk] for i in range(0, len(mono), chunk)]
    cqt = np.concatenate([
        librosa.cqt(piece, sr=SAMPLE_RATE, n_bins=N_BINS, bins_per_octave=BINS_PER_OCTAVE,
                    hop_length=HOP_LENGTH)
        for piece in pieces
    ], axis=1)
    features = (np.log(np.abs(cqt) + 1e-6).T - recognizer.mean) / recognizer.std
    frames, window = len(features), recognizer.model.config.timestep
    features = np.pad(features, ((0, window - frames % window), (0, 0))).astype(np.float32)
    with torch.no_grad():
        labels = [
            recognizer.model(torch.from_numpy(features[i:i + window])[None]).argmax(-1)[0].numpy()
            for i in range(0, len(features), window)
        ]
    return np.concatenate(labels)[:frames]


def reference_segments(recognizer: ChordRecognizer, wav: np.ndarray, sample_rate: int) -> list[ChordSegment]:
    indices = reference_frame_labels(recognizer, wav, sample_rate)
    changes = np.r_[0, np.flatnonzero(np.diff(indices)) + 1, len(indices)]
    return [ChordSegment(a * REFERENCE_FRAME_SECONDS, b * REFERENCE_FRAME_SECONDS, recognizer.vocab[indices[a]])
            for a, b in zip(changes[:-1], changes[1:])]


def labels_at(segments: list[ChordSegment], times: np.ndarray) -> np.ndarray:
    starts = np.array([segment.start for segment in segments])
    index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(segments) - 1)
    return np.array([segments[i].label for i in index])


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of this process (all threads) and the result of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    count = int(args.minutes * 60 / 1.35) + 1
    labels, seconds = random_progression(count, seed=0)
    mono, _ = synth_progression(labels, seconds, RATE, seed=0)
    mono = mono[: int(args.minutes * 60 * RATE)]
    wav = np.stack([mono, 0.8 * mono])
    recognizer = ChordRecognizer.from_state_dict(published_state_dict(170), mean=-5.0, std=2.0)
    recognizer.recognize(wav[:, : RATE * 20], RATE)  # warm-up: allocations, librosa filter caches
    reference_segments(recognizer, wav[:, : RATE * 20], RATE)

    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "reference": [], "features": [], "model": []}
    for _ in range(args.runs):
        *cost, segments = timed(lambda: recognizer.recognize(wav, RATE))
        runs["ours"].append(cost)
        runs["reference"].append(timed(lambda: reference_segments(recognizer, wav, RATE))[:2])
        *cost, features = timed(lambda: cqt_features(wav.mean(axis=0), RATE))
        runs["features"].append(cost)
        runs["model"].append(timed(lambda: recognizer.frame_labels(features))[:2])
    wall = {name: statistics.median(c[0] for c in costs) for name, costs in runs.items()}
    cpu = {name: statistics.median(c[1] for c in costs) for name, costs in runs.items()}

    grid = np.arange(0.0, wav.shape[1] / RATE, 0.05)
    same = np.mean(labels_at(segments, grid) == labels_at(reference_segments(recognizer, wav, RATE), grid))
    print(f"song: {wav.shape[1] / RATE:.1f} s stereo {RATE} Hz, {len(segments)} segments; "
          f"torch threads {torch.get_num_threads()}; medians of {args.runs} runs, wall (CPU) seconds")
    print(f"ours       {wall['ours']:.3f} ({cpu['ours']:.3f})  features {wall['features']:.3f} "
          f"({cpu['features']:.3f}), model {wall['model']:.3f} ({cpu['model']:.3f})")
    print(f"reference  {wall['reference']:.3f} ({cpu['reference']:.3f})  10 s CQT chunks, batch-1 windows")
    print(f"ratio reference/ours {wall['reference'] / wall['ours']:.2f}x wall, "
          f"{cpu['reference'] / cpu['ours']:.2f}x CPU; same label at {same:.1%} of 50 ms steps")


if __name__ == "__main__":
    main()
