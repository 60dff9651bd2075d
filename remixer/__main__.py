"""Command line: remix a song (or generate music) without Docker or Cog.

    python -m remixer SONG --prompt "bossa nova" -o remix.wav
    python -m remixer --prompt "lofi hip hop" --text-chords "C G A:min F" --bpm 90 --duration 20 -o out.mp3
    python -m remixer batch SONGS... --prompt A --prompt B --out DIR   # many at once: batch --help

The options are the Cog predictor's inputs (see ``predict.py``); the output format comes from
the ``-o`` suffix (wav, flac or mp3). Extra outputs are written beside it as
``<name>.instrumental.<ext>``, ``<name>.stem-<stem>.<ext>`` and ``<name>.analysis.json``.
Weights come from ``$REMIXER_WEIGHTS_DIR`` (default ``weights/``); fetch them first with
``python -m remixer.weights fetch remix-default``, or set ``REMIXER_OFFLINE=1`` to fail fast.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from remixer.batch.cli import main as batch_main
from remixer.cli_options import add_runtime_options
from remixer.pipeline import Models, Pipeline, load_clip, load_song
from remixer.requests import (CHORD_VERSIONS, DEFAULT_DURATION, DEFAULT_TIME_SIG,
                              MELODY_VERSIONS, NORMALIZATIONS, OUTPUT_FORMATS, GenerateRequest, InputError,
                              Output, RemixRequest, Sampling, check_request_kind)
from remixer.weights import WeightsError, WeightsStore

REMIX_STAGES = 9  # decode, separation, chords, 2 analyses, generation, beat-sync, mix, export


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m remixer", description=__doc__.split("\n\n")[0],
        epilog="many remixes or prompt sweeps, locally or on Cog servers: python -m remixer batch --help",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("song", nargs="?", type=Path,
                        help="song to remix; omit it to generate music from the prompt / chords")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output file; its suffix (.wav, .flac, .mp3) sets the format")
    parser.add_argument("-p", "--prompt", help="style of the music, e.g. 'bossa nova' (required for a remix)")
    parser.add_argument("--section-prompts",
                        help="a prompt per part of the song: 'verse: nylon guitar; chorus: full band' "
                             "(All-In-One's labels) or '0:00-0:45: ambient pads; 0:45-: full band'")
    parser.add_argument("--model-version", default="stereo-chord", choices=CHORD_VERSIONS + MELODY_VERSIONS)
    parser.add_argument("--normalization", default="loudness", choices=NORMALIZATIONS,
                        help="output level strategy (loudness = -14 LUFS)")
    parser.add_argument("--beat-sync-threshold", type=float, default=None,
                        help="largest generated-to-song downbeat gap in seconds (default: 1.1 beats)")
    parser.add_argument("--target-bpm", type=float, default=None,
                        help="tempo of the remix (40-240, within 0.5x-2x of the song's; default: the song's)")
    parser.add_argument("--key-shift", type=int, default=0, help="semitones to move the key by (-12..12)")
    parser.add_argument("--small-chord-voca", action="store_true",
                        help="read chords with the 25-class BTC (major/minor) instead of 170 classes")
    parser.add_argument("--chroma-coefficient", type=float, default=1.0,
                        help="strength of the chord conditioning (0.5-2.5)")
    parser.add_argument("--multi-band-diffusion", action="store_true", help="decode with MBD (mono models)")
    parser.add_argument("--top-k", type=int, default=250)
    parser.add_argument("--top-p", type=float, default=0.0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--cfg", type=float, default=3.0, help="classifier-free guidance coefficient")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--return-instrumental", action="store_true", help="also write the synced instrumental")
    parser.add_argument("--return-stems", action="store_true", help="also write the song's four stems")
    parser.add_argument("--return-analysis", action="store_true",
                        help="also write bpm, beats, downbeats and chords as JSON, and their picture (PNG)")
    gen = parser.add_argument_group("generation without a song")
    gen.add_argument("--duration", type=float, default=DEFAULT_DURATION, help="seconds to generate")
    gen.add_argument("--text-chords", help="progression like 'C G A:min F' (bars by spaces, chords of a bar by commas)")
    gen.add_argument("--bpm", type=float, help="tempo of --text-chords")
    gen.add_argument("--time-sig", default=DEFAULT_TIME_SIG, help="time signature of --text-chords")
    gen.add_argument("--input-audio", type=Path, help="audio whose chords/melody to follow, or to continue")
    gen.add_argument("--continuation", action="store_true", help="continue --input-audio")
    gen.add_argument("--audio-start", type=float, default=0.0, help="start (s) of --input-audio to use")
    gen.add_argument("--audio-end", type=float, default=None, help="end (s) of --input-audio to use")
    run = parser.add_argument_group("runtime")
    add_runtime_options(run)
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar or stage log")
    return parser


def _request(args: argparse.Namespace) -> RemixRequest | GenerateRequest:
    fmt = args.output.suffix.lower().lstrip(".")
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"output {args.output}: the suffix must be one of "
                         f"{', '.join('.' + f for f in OUTPUT_FORMATS)}")
    sampling = Sampling(top_k=args.top_k, top_p=args.top_p, temperature=args.temperature,
                        classifier_free_guidance=args.cfg, seed=args.seed)
    output = Output(format=fmt, normalization=args.normalization)
    common = dict(prompt=args.prompt, model_version=args.model_version, sampling=sampling, output=output,
                  large_chord_voca=not args.small_chord_voca, chroma_coefficient=args.chroma_coefficient,
                  multi_band_diffusion=args.multi_band_diffusion)
    check_request_kind(vars(args), remix=args.song is not None, song="a song",
                       spell=lambda name: "--" + name.replace("_", "-"))
    if args.song is not None:
        return RemixRequest(song=args.song, beat_sync_threshold=args.beat_sync_threshold,
                            return_instrumental=args.return_instrumental, return_stems=args.return_stems,
                            return_analysis=args.return_analysis, target_bpm=args.target_bpm,
                            key_shift=args.key_shift, section_prompts=args.section_prompts, **common)
    return GenerateRequest(duration=args.duration, text_chords=args.text_chords, bpm=args.bpm,
                           time_sig=args.time_sig, audio=args.input_audio, audio_start=args.audio_start,
                           audio_end=args.audio_end, continuation=args.continuation, **common)


def _remix_stages(request: RemixRequest) -> int:
    """The remix's stages, + the transform of a new tempo or key."""
    return REMIX_STAGES + (request.target_bpm is not None or request.key_shift != 0)


def _check_audio(request: RemixRequest | GenerateRequest, max_duration: float) -> None:
    """Decode the song (or input audio) before any model loads, so that a missing, broken or
    too long file fails in a moment instead of after the models' 15 s; the pipeline decodes it
    again, which costs little next to loading the models."""
    if isinstance(request, RemixRequest):
        load_song(request.song, max_duration)
    elif request.audio is not None:
        load_clip(request, max_duration)


def _generation_stages(request: GenerateRequest) -> int:
    """generation + export, + decode of an input audio, + separation and chords of audio chords."""
    if request.audio is None:
        return 2
    reads_chords = not request.continuation and request.model_version in CHORD_VERSIONS
    return 5 if reads_chords else 3


def _place(outputs: list[Path], destination: Path) -> list[Path]:
    """Move the pipeline's outputs next to ``destination`` (the main one becomes ``destination``)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    placed = []
    for index, path in enumerate(outputs):
        target = destination if index == 0 else destination.with_name(
            f"{destination.stem}.{path.stem}{path.suffix}")
        shutil.move(str(path), target)
        placed.append(target)
    return placed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["batch"]:
        return batch_main(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        request = _request(args)
        _check_audio(request, args.max_duration)
        store = WeightsStore(args.weights_dir, offline=args.offline or None)
        versions = (request.model_version,)
        models = Models.load(store, device=args.device, analysis_backend=args.analysis_backend,
                             preload=versions)
        stages = _remix_stages(request) if isinstance(request, RemixRequest) else _generation_stages(request)
        with tqdm(total=stages, unit="stage", disable=args.quiet or None, file=sys.stderr) as bar:
            def advance(stage: str) -> None:
                bar.set_description(stage)
                bar.update(1)
            pipeline = Pipeline(models, max_duration=args.max_duration, on_stage=advance)
            with tempfile.TemporaryDirectory(prefix="remixer-") as workdir:
                if isinstance(request, RemixRequest):
                    result = pipeline.remix(request, Path(workdir))
                else:
                    result = pipeline.generate(request, Path(workdir))
                placed = _place(result.outputs, args.output)
    except (ValueError, WeightsError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in placed:
        print(path)
    print(f"seed: {result.seed}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
