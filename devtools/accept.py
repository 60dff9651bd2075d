"""Acceptance run on the REAL weights: what the tests' tiny random models cannot show.

Run it (``make accept`` or ``python -m devtools.accept``) on a machine where
``python -m remixer.weights fetch remix-default`` has worked. It never downloads anything:

1. **Strict loads.** Every MusicGen Chord checkpoint on disk loads with ``strict=True`` and holds
   the published key count (619 mono, 627 stereo).
2. **BTC copies.** The 170-class BTC inside each checkpoint (the one chord models run) against
   ``btc_model_large_voca.pt``: equal or different, reported (:func:`btc_copy_report`); and
   what that BTC reads on 30 s of digital silence, where the product reads ``N`` whatever the
   network says (:func:`silence_labels`).
3. **Chords reach the output.** 8 s generated with text chords and 8 s with chords read from a
   synthesized song (:mod:`devtools.synth`); madmom's chord recogniser (its shipped pretrained
   model, 25 classes) reads the output back, and its agreement with the chords asked for is
   reported (mir_eval ``majmin``, time-weighted; random weights would score near chance).
4. **T5 tokenisation.** The published models tokenised descriptions with transformers 4.x's slow
   sentencepiece ``T5Tokenizer``; transformers 5 loads t5-base's ``tokenizer.json``. Every
   description shape we send (prompt, time signature, both bpm suffixes, punctuation, accents,
   emoji, odd whitespace) must get the same ids from the product's tokenizer as from
   ``spiece.model`` read by sentencepiece itself (the slow tokenizer's ids: its pieces, then
   ``</s>``); a difference fails the run (:func:`compare_t5_tokenizers`). The real files are not
   reachable where the tests run, so this check lives here.
5. **One full remix** of a 30 s synthesized song with stage timings (on the GPU when present).

Without the weights it says so in one line and exits with status 1. It is not part of
``make test``. Files go to a temporary directory (``--keep DIR`` keeps the outputs there).
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import typing as tp
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from btc.labels import ChordSegment, normalize_label
from devtools.synth import demo_song
from remixer import audio as audio_io
from remixer.chords import ChordTimeline
from remixer.weights import WeightsError, WeightsStore

if tp.TYPE_CHECKING:
    import torch

__all__ = ["EXPECTED_KEYS", "T5_DESCRIPTIONS", "ChordAgreement", "BTCCopies", "compare_btc_copies",
           "btc_copy_report", "compare_t5_tokenizers", "silence_labels", "main"]

# Published key counts (checkpoint-formats.md): LM + output projections + the 221 BTC keys.
EXPECTED_KEYS = {"chord": 619, "chord-large": 619, "stereo-chord": 627, "stereo-chord-large": 627}
DEFAULT_VERSION = "stereo-chord"
# The 170-class BTC file that each chord checkpoint's copy is compared with.
SEPARATE_BTC = "btc-model-large-voca"
PROGRESSION = "C G A:min F"
BPM = 120.0
SECONDS = 8.0
# Descriptions as the product builds them (remixer.pipeline: _with_bpm, _chord_description), and
# what clients type into them.
T5_DESCRIPTIONS = (
    "bossa nova", "bossa nova, bpm : 90", "bpm : 128", "k pop, 4/4, bpm : 140.0", "4/4",
    "lofi hip hop, 6/8, bpm : 92.5", "jazz trio: brushes, upright bass; swing!", "80's synth-pop (dark)",
    "Café crème, naïve señor, Björk-style, Ångström", "Schön & süß — «très» ‘nice’ “quotes”",
    "lofi 🎵 beats 🔥🔥", "ＦＵＬＬ　ｗｉｄｔｈ ｔｅｘｔ", "double  spaces,\ttabs\nand newlines ",
    "  leading and trailing  ", "UPPER lower MiXeD 123 4.5 -7 +3 100%", "",
)


@dataclass(frozen=True)
class ChordAgreement:
    """How well the chords read back from an output match the chords it was asked for."""

    what: str
    majmin: float
    asked: tuple[str, ...]
    heard: tuple[str, ...]


def main(argv: tp.Sequence[str] | None = None) -> int:
    """Run the acceptance checks; 0 when every check ran, 1 on missing weights or a failure."""
    parser = argparse.ArgumentParser(prog="python -m devtools.accept", description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="weights cache (default: $REMIXER_WEIGHTS_DIR, else <repo>/weights)")
    parser.add_argument("--device", default=None, help="default: cuda when available")
    parser.add_argument("--version", default=DEFAULT_VERSION, choices=sorted(EXPECTED_KEYS),
                        help="chord model for the generations and the remix")
    parser.add_argument("--keep", type=Path, default=None, help="keep the outputs in this directory")
    args = parser.parse_args(argv)
    store = WeightsStore(args.weights_dir, offline=True)
    needed = [*store.manifest.group("remix-default"), store.manifest.get(f"musicgen-{args.version}")]
    needed = list({spec.name: spec for spec in needed}.values())
    missing = [spec.name for spec in needed if not (store.root / spec.path).is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        print(f"accept: real weights missing in {store.root}: {len(missing)} of {len(needed)} files "
              f"({shown}); run `python -m remixer.weights fetch remix-default` first")
        return 1
    try:
        for spec in needed:
            store.path(spec.name)  # checks size and digests against the manifest
    except WeightsError as error:
        print(f"accept: weights in {store.root} fail their check: {error}")
        return 1
    with tempfile.TemporaryDirectory(prefix="remixer-accept-") as scratch:
        workdir = args.keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        return _run(store, args.version, args.device, workdir)


def _run(store: WeightsStore, version: str, device: str | None, workdir: Path) -> int:
    import torch

    from remixer.chords import TextChords, read_window_chords
    from remixer.generation import GenerationParams
    from remixer.pipeline import Models, Pipeline, _chord_description
    from remixer.requests import RemixRequest, Sampling

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"accept: device {device}, weights {store.root}")
    started = time.perf_counter()
    models = Models.load(store, device=device, preload=(version,))
    print(f"[load] remix models in {time.perf_counter() - started:.1f} s")

    failures = 0
    for other, expected in EXPECTED_KEYS.items():
        if not store.target(f"musicgen-{other}").is_file():
            print(f"[strict] musicgen-{other}: not on disk, skipped")
            continue
        keys = len(models.generators.get(other).model.lm.state_dict())
        ok = keys == expected
        failures += not ok
        print(f"[strict] musicgen-{other}: loaded strictly, {keys} keys "
              f"({'as published' if ok else f'EXPECTED {expected}'})")
    for line in btc_copy_report(store):
        print(f"[btc] {line}")

    heard = silence_labels(models.chord_recognizer(version, large_voca=True))
    print(f"[btc] 30 s of digital silence: the network reads {dict(heard.most_common())} "
          f"(the product reads N there)")
    generator = models.generators.get(version)
    tokenizer = generator.model.lm.condition_provider.conditioners["description"].t5_tokenizer
    differences = compare_t5_tokenizers(tokenizer, store.path("t5-base-spiece"))
    failures += bool(differences)
    print(f"[t5] {len(T5_DESCRIPTIONS)} descriptions: " + (
        "the same ids as the published sentencepiece tokenizer" if not differences else
        f"{len(differences)} DIFFERENT, e.g. {differences[0][0]!r}: ours {differences[0][1]}, "
        f"published {differences[0][2]}"))
    reader = _MadmomChords()
    song = demo_song(12.0, bpm=BPM, sample_rate=44_100)
    stems = models.separator.separate(song.audio, song.sample_rate)
    recognizer = models.chord_recognizer(version, large_voca=True)
    heard_in_song = recognizer.recognize(stems.chord_source, song.sample_rate)
    requests = {
        "text chords": (TextChords(PROGRESSION, BPM),
                        ChordTimeline.from_text(PROGRESSION, BPM, "4/4").segments(SECONDS)),
        "audio chords": (read_window_chords(recognizer, stems.chord_source, song.sample_rate, [0.0],
                                            duration=SECONDS, window=generator.window),
                         _cut(heard_in_song, SECONDS)),
    }
    for what, (chords, asked) in requests.items():
        description = _chord_description("pop, piano and bass", "4/4", BPM)
        started = time.perf_counter()
        result = generator.generate(description, GenerationParams(duration=SECONDS, seed=0), chords=chords)
        seconds = time.perf_counter() - started
        path = audio_io.export_audio(result.audio, result.sample_rate,
                                     workdir / f"{what.replace(' ', '-')}.wav", strategy="loudness")
        agreement = _agreement(what, asked, reader.recognize(result.audio, result.sample_rate))
        print(f"[chords] {what}: {SECONDS:g} s in {seconds:.1f} s ({path.name}); description "
              f"{description!r}; madmom majmin agreement with the request {agreement.majmin:.2f}")
        print(f"         asked {' '.join(agreement.asked)} | heard {' '.join(agreement.heard)}")

    song = demo_song(30.0, bpm=BPM, sample_rate=44_100)
    song_path = audio_io.export_audio(song.audio, song.sample_rate, workdir / "song.wav", strategy=None)
    result = Pipeline(models).remix(
        RemixRequest(song=song_path, prompt="bossa nova", model_version=version,
                     sampling=Sampling(seed=0), return_analysis=True), workdir / "remix")
    stages = ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in result.timings.items())
    print(f"[remix] 30 s song: {sum(result.timings.values()):.1f} s ({stages}); description "
          f"{result.analysis['description']!r}; outputs in {workdir / 'remix'}")
    print("accept: " + ("every check ran" if not failures else f"{failures} check(s) FAILED"))
    return 1 if failures else 0


@dataclass(frozen=True)
class BTCCopies:
    """How the BTC copy of a chord checkpoint compares with a separate BTC state dict."""

    compared: int
    different: tuple[str, ...]
    max_abs_diff: float

    @property
    def equal(self) -> bool:
        return not self.different

    def describe(self) -> str:
        if self.equal:
            return f"equal ({self.compared} tensors)"
        return (f"DIFFERENT: {len(self.different)} of {self.compared} tensors differ "
                f"(max |difference| {self.max_abs_diff:.3g}), e.g. {self.different[0]}")


def compare_btc_copies(checkpoint: tp.Mapping[str, torch.Tensor],
                       separate: tp.Mapping[str, torch.Tensor]) -> BTCCopies:
    """Compare two BTC state dicts key by key (a key present in one only counts as different)."""
    import torch

    different, largest = [], 0.0
    for key in sorted(set(checkpoint) | set(separate)):
        a, b = checkpoint.get(key), separate.get(key)
        if a is None or b is None or a.shape != b.shape:
            different.append(key)
            largest = math.inf
        elif not torch.equal(a.float(), b.float()):
            different.append(key)
            largest = max(largest, float((a.float() - b.float()).abs().max()))
    return BTCCopies(len(set(checkpoint) | set(separate)), tuple(different), largest)


def btc_copy_report(store: WeightsStore) -> list[str]:
    """One line per chord checkpoint on disk: whether the 170-class BTC it carries (the copy the
    published chord models ran, and the one the product runs) equals ``btc_model_large_voca.pt``.

    A report, not a check: the product runs the checkpoint's copy either way, as published.
    """
    import torch

    from remixer.musicgen.loaders import checkpoint_btc_weights

    present = [name for name in (f"musicgen-{version}" for version in EXPECTED_KEYS)
               if name in store.manifest.names and store.target(name).is_file()]
    if not present:
        return []
    if not store.target(SEPARATE_BTC).is_file():
        return [f"BTC copies: {SEPARATE_BTC} is not on disk, nothing to compare them with"]
    separate = torch.load(store.path(SEPARATE_BTC), map_location="cpu", weights_only=False)["model"]
    lines = []
    for name in present:
        try:
            copies = compare_btc_copies(checkpoint_btc_weights(store.path(name)), separate)
            lines.append(f"{name}: BTC copy vs {SEPARATE_BTC}: {copies.describe()}")
        except ValueError as exc:
            lines.append(f"{name}: BTC copy not readable: {exc}")
    return lines


def silence_labels(recognizer: tp.Any, seconds: float = 30.0) -> Counter:
    """What ``recognizer``'s network says, frame by frame, on digital silence (no ``N`` override)."""
    import torch

    from btc.features import cqt_features

    features = cqt_features(np.zeros(int(seconds * 22050), np.float32), 22050)
    window = recognizer.model.config.timestep
    padded = np.zeros((-(-len(features) // window) * window, features.shape[1]), np.float32)
    padded[:len(features)] = (features - recognizer.mean) / recognizer.std
    batch = torch.from_numpy(padded).view(-1, window, features.shape[1]).to(recognizer.device)
    with torch.inference_mode():
        indices = recognizer.model(batch).argmax(-1).flatten()[:len(features)].cpu().numpy()
    return Counter(recognizer.vocab[i] for i in indices)


def compare_t5_tokenizers(tokenizer: tp.Any, spiece: Path,
                          texts: tp.Sequence[str] = T5_DESCRIPTIONS) -> list[tuple[str, list[int], list[int]]]:
    """The descriptions whose ids differ: ``(text, ours, published)`` for each.

    ``tokenizer`` is the product's (what the T5 conditioner calls); the published ids are the
    slow ``T5Tokenizer``'s of transformers 4.31 (sakemin/cog-musicgen-chord's cog.yaml pins
    ``transformers>=4.31.0``; audiocraft's ``T5Conditioner`` loads ``T5Tokenizer``): the
    sentencepiece pieces of the text, then ``</s>``.
    """
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(spiece))
    different = []
    for text in texts:
        ours = list(tokenizer(text)["input_ids"])
        published = [*processor.encode(text), processor.eos_id()]
        if ours != published:
            different.append((text, ours, published))
    return different


class _MadmomChords:
    """madmom's CNN chord features + CRF decoder (pretrained models shipped with madmom)."""

    def __init__(self) -> None:
        from madmom.features.chords import CNNChordFeatureProcessor, CRFChordRecognitionProcessor

        self._features = CNNChordFeatureProcessor()
        self._decode = CRFChordRecognitionProcessor()

    def recognize(self, wav: np.ndarray, sample_rate: int) -> list[ChordSegment]:
        from madmom.audio.signal import Signal

        mono = audio_io.resample(np.atleast_2d(wav).mean(axis=0), sample_rate, 44_100)
        return [ChordSegment(float(start), float(end), normalize_label(str(label)))
                for start, end, label in self._decode(self._features(Signal(mono, sample_rate=44_100)))]


def _cut(segments: tp.Sequence[ChordSegment], seconds: float) -> list[ChordSegment]:
    return [ChordSegment(s.start, min(s.end, seconds), s.label) for s in segments if s.start < seconds]


def _agreement(what: str, asked: list[ChordSegment], heard: list[ChordSegment]) -> ChordAgreement:
    import mir_eval

    asked = [s for s in asked if s.end > s.start]
    heard = [s for s in heard if s.end > s.start]
    scores = mir_eval.chord.evaluate(np.array([[s.start, s.end] for s in asked]), [s.label for s in asked],
                                     np.array([[s.start, s.end] for s in heard]), [s.label for s in heard])
    return ChordAgreement(what, float(scores["majmin"]), tuple(s.label for s in asked),
                          tuple(s.label for s in heard))


if __name__ == "__main__":
    sys.exit(main())
