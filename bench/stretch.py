"""Which time-stretcher keeps the vocals of a tempo-changed remix: measured, not listened to.

Candidates (all installed with the project): Rubber Band through ``pedalboard`` (what
:mod:`remixer.transform` uses), pytsmod's WSOLA, phase vocoder (phase-locked) and HPTSM
(harmonic/percussive split: phase vocoder on the harmonic part, OLA on the percussive), and
librosa's phase vocoder. Each stretches synthesized parts (:func:`devtools.synth.demo_song`) by
the length ratios of 100 -> 120 BPM (0.833) and 100 -> 80 BPM (1.25):

* **transient smear** (drum stem): for every drum hit (known onset times, scaled by the ratio),
  the 10-90 % rise time of the amplitude envelope (1 ms smoothing), median in ms; the pre-echo,
  energy in the 40 ms before the hit against the 40 ms after it (dB, median; lower is cleaner:
  a smeared or doubled hit leaks ahead); and the hit's displacement, |10 % point - expected
  onset| (ms, median: a beat-synced remix needs the hits where the map puts them). The
  unstretched stem gives the floor.
* **pitch stability** (sung line with scoops and vibrato): yin f0 of the stretched line against
  the original's f0 at the corresponding time, |error| in cents over voiced frames, median and
  p95. A stretcher that keeps pitch scores near 0.
* **speed**: seconds to stretch one minute of stereo 44.1 kHz audio (median of ``--runs``), one
  thread.

Run: ``python bench/stretch.py [--seconds 20] [--runs 3]``. Prints one table row per stretcher
and ratio; the figures in ``bench/README.md`` come from it.
"""
from __future__ import annotations

import argparse
import time
import typing as tp
from pathlib import Path
import sys

import librosa
import numpy as np
import pedalboard
import pytsmod
import scipy.signal
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devtools.synth import demo_song  # noqa: E402

RATE = 44_100
BPM = 100.0
RATIOS = (100 / 120, 100 / 80)
Stretcher = tp.Callable[[np.ndarray, float], np.ndarray]


def rubberband(x: np.ndarray, ratio: float) -> np.ndarray:
    return pedalboard.time_stretch(x.astype(np.float32), RATE, stretch_factor=1 / ratio,
                                   high_quality=True, preserve_formants=True)


def wsola(x: np.ndarray, ratio: float) -> np.ndarray:
    return np.asarray(pytsmod.wsola(x, ratio))


def phase_vocoder(x: np.ndarray, ratio: float) -> np.ndarray:
    return np.asarray(pytsmod.phase_vocoder(x, ratio, phase_lock=True))


def hptsm(x: np.ndarray, ratio: float) -> np.ndarray:
    return np.asarray(pytsmod.hptsm(x, ratio))


def librosa_pv(x: np.ndarray, ratio: float) -> np.ndarray:
    return librosa.effects.time_stretch(x, rate=1 / ratio)


STRETCHERS: dict[str, Stretcher] = {"rubberband (pedalboard)": rubberband, "pytsmod wsola": wsola,
                                    "pytsmod phase vocoder": phase_vocoder, "pytsmod hptsm": hptsm,
                                    "librosa phase vocoder": librosa_pv}


def _mono(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1]).mean(axis=0)


def transient_smear(stretched: np.ndarray, onsets: np.ndarray) -> tuple[float, float, float]:
    """Median 10-90 % rise time (ms), pre-echo (dB) and |hit displacement| (ms, 10 % point
    against the expected onset) around the given onsets."""
    envelope = np.abs(scipy.signal.hilbert(_mono(stretched)))
    smooth = int(0.001 * RATE)
    envelope = np.convolve(envelope, np.ones(smooth) / smooth, mode="same")
    span = int(0.040 * RATE)
    rises, echoes, moves = [], [], []
    for onset in np.round(onsets * RATE).astype(int):
        if onset - span < 0 or onset + span > envelope.size:
            continue
        after = envelope[onset - span // 4:onset + span]  # a stretcher may move the hit by a few ms
        peak = int(np.argmax(after))
        rise = after[:peak + 1]
        start = np.flatnonzero(rise >= 0.1 * after[peak])[0]
        end = np.flatnonzero(rise >= 0.9 * after[peak])[0]
        rises.append(1000 * (end - start) / RATE)
        moves.append(abs(1000 * (start - span // 4) / RATE))
        before = envelope[onset - span // 4 - span:onset - span // 4]
        echoes.append(10 * np.log10((before ** 2).sum() / max((after ** 2).sum(), 1e-20) + 1e-20))
    return float(np.median(rises)), float(np.median(echoes)), float(np.median(moves))


def _f0(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mono = _mono(x)
    f0 = librosa.yin(mono, fmin=150, fmax=1000, sr=RATE, frame_length=2048, hop_length=256)
    rms = librosa.feature.rms(y=mono, frame_length=2048, hop_length=256)[0][:f0.size]
    return f0, rms > 0.3 * rms.max()


def pitch_error(original: np.ndarray, stretched: np.ndarray, ratio: float) -> tuple[float, float]:
    """Median and p95 |f0 error| in cents against the original at the corresponding time."""
    f0, voiced = _f0(original)
    g0, g_voiced = _f0(stretched)
    source = np.clip(np.round(np.arange(g0.size) / ratio).astype(int), 0, f0.size - 1)
    use = g_voiced & voiced[source]
    cents = np.abs(1200 * np.log2(g0[use] / f0[source][use]))
    return float(np.median(cents)), float(np.percentile(cents, 95))


def speed(stretcher: Stretcher, audio: np.ndarray, ratio: float, runs: int) -> float:
    """Median seconds per minute of the given stereo audio."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        stretcher(audio, ratio)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)) * 60 / (audio.shape[1] / RATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the test song")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per stretcher and ratio")
    args = parser.parse_args()
    torch.set_num_threads(1)
    song = demo_song(args.seconds, BPM, sample_rate=RATE, channels=2, seed=5)
    drums, vocals = song.stems["drums"][:1], song.stems["vocals"][:1]
    floor = transient_smear(drums, song.beats)
    print(f"{args.seconds:g} s synthesized song at {BPM:g} BPM, {RATE} Hz; unstretched drums: rise "
          f"{floor[0]:.2f} ms, pre-echo {floor[1]:.1f} dB, displacement {floor[2]:.2f} ms")
    print("| stretcher | length ratio | rise (ms) | pre-echo (dB) | hit displacement (ms) "
          "| pitch error median / p95 (cents) | s per min (stereo) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, stretcher in STRETCHERS.items():
        for ratio in RATIOS:
            rise, echo, moved = transient_smear(stretcher(drums, ratio), song.beats * ratio)
            median, p95 = pitch_error(vocals, stretcher(vocals, ratio), ratio)
            seconds = speed(stretcher, song.stems["vocals"], ratio, args.runs)
            print(f"| {name} | {ratio:.3f} | {rise:.2f} | {echo:.1f} | {moved:.2f} | {median:.1f} / {p95:.1f} "
                  f"| {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
