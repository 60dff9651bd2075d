"""Command line: remix a song (or generate music) without Docker or Cog.

    python -m remixer SONG --prompt "bossa nova" -o remix.wav
    python -m remixer --prompt "lofi hip hop" --text-chords "C G A:min F" --bpm 90 --duration 20 -o out.mp3
    python -m remixer SONG --prompt "bossa nova" -o try.wav --smoke      # no download: tiny models, noise
    python -m remixer batch SONGS... --prompt A --prompt B --out DIR   # many at once: batch --help

The options are the Cog predictor's inputs (see ``predict.py``); the output format comes from
the ``-o`` suffix (wav, flac or mp3). Extra outputs are written beside it as
``<name>.instrumental.<ext>``, ``<name>.stem-<stem>.<ext>`` and ``<name>.analysis.json``
(with ``.png`` and ``.html``).
Weights come from ``$REMIXER_WEIGHTS_DIR`` (default ``weights/``); fetch them first with
``python -m remixer.weights fetch remix-default``, or set ``REMIXER_OFFLINE=1`` to fail fast.

Only the input checks are imported up front (torch-free, :mod:`remixer.requests`): ``--help`` and
a bad option answer at once, and the thread settings (:mod:`remixer.threads`) are in place before
torch and numpy load. The song is decoded and the weight files looked at before the model code
loads, so a bad song or a missing file fails in a moment.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from remixer.cli_options import add_runtime_options
from remixer.requests import (CHORD_VERSIONS, DEFAULT_DURATION, DEFAULT_TIME_SIG, MELODY_VERSIONS,
                              NORMALIZATIONS, OUTPUT_FORMATS, GenerateRequest, InputError, Output,
                              RemixRequest, Sampling, check_request_kind)
from remixer.threads import configure_threads
from remixer.smoke import smoke_from_env
from remixer.weights import WeightsError, WeightsStore
from remixer.weights.needs import weights_needed

_NOISE_BANNER = "=" * 78


def _parser() -> argparse.ArgumentParser:
    # Each help text states its default itself, once; argparse's "(default: ...)" would repeat it.
    parser = argparse.ArgumentParser(prog="python -m remixer", description=__doc__.split("\n\n")[0],
                                     epilog="Weights: python -m remixer.weights list|fetch. Many remixes or prompt "
                                            "sweeps, locally or on Cog servers: python -m remixer "
                                            "batch --help. More in the README.")
    parser.add_argument("song", nargs="?", type=Path,
                        help="song to remix; omit it to generate music from the prompt / chords")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output file; its suffix (.wav, .flac, .mp3) sets the format")
    parser.add_argument("-p", "--prompt", help="style of the music, e.g. 'bossa nova' (required for a remix)")
    parser.add_argument("--section-prompts",
                        help="a prompt per part of the song: 'verse: nylon guitar; chorus: full band' "
                             "(All-In-One's labels) or '0:00-0:45: ambient pads; 0:45-: full band'")
    parser.add_argument("--model-version", default="stereo-chord", choices=CHORD_VERSIONS + MELODY_VERSIONS,
                        metavar="VERSION", help=f"model: {', '.join(CHORD_VERSIONS + MELODY_VERSIONS)} "
                                                f"(default: %(default)s; melody ones generate only)")
    parser.add_argument("--normalization", default="loudness", choices=NORMALIZATIONS,
                        help="output level: loudness (-14 LUFS), clip, peak or rms (default: %(default)s)")
    parser.add_argument("--beat-sync-threshold", type=float, default=None, metavar="SECONDS",
                        help="largest generated-to-song downbeat gap (default: 1.1 beats)")
    parser.add_argument("--song-bpm", type=float, default=None, metavar="BPM",
                        help="the song's tempo, 40-240, when you know it: the analysis reads the beats "
                             "at it (e.g. a fast song read at half tempo; default: read from the song)")
    parser.add_argument("--target-bpm", type=float, default=None, metavar="BPM",
                        help="tempo of the remix, 40-240 and within 0.5x-2x of the song's "
                             "(default: the song's)")
    parser.add_argument("--key-shift", type=int, default=0, metavar="SEMITONES",
                        help="semitones to move the key by, -12..12 (default: %(default)s)")
    parser.add_argument("--small-chord-voca", action="store_true",
                        help="read chords with the 25-class BTC (major/minor) instead of 170 classes")
    parser.add_argument("--chroma-coefficient", type=float, default=1.0,
                        help="strength of the chord conditioning, 0.5-2.5 (default: %(default)s)")
    parser.add_argument("--multi-band-diffusion", action="store_true",
                        help="decode with Multi-Band Diffusion (mono models only)")
    parser.add_argument("--top-k", type=int, default=250,
                        help="sample among the k most likely tokens; 0: no limit (default: %(default)s)")
    parser.add_argument("--top-p", type=float, default=0.0,
                        help="nucleus sampling mass; 0 uses --top-k (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling temperature; higher is more diverse, 0 is greedy (default: %(default)s)")
    parser.add_argument("--cfg", type=float, default=3.0,
                        help="classifier-free guidance: how closely the output follows the prompt and "
                             "chords (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a random one, printed)")
    parser.add_argument("--return-instrumental", action="store_true", help="also write the synced instrumental")
    parser.add_argument("--return-stems", action="store_true", help="also write the song's four stems")
    parser.add_argument("--return-analysis", action="store_true",
                        help="also write bpm, beats, downbeats and chords as JSON, their picture (PNG) "
                             "and an interactive page with players (HTML)")
    gen = parser.add_argument_group("generation without a song")
    gen.add_argument("--duration", type=float, default=DEFAULT_DURATION, metavar="SECONDS",
                     help="seconds to generate (default: %(default)s)")
    gen.add_argument("--text-chords", help="progression like 'C G A:min F' (bars by spaces, chords of a bar by commas)")
    gen.add_argument("--bpm", type=float, help="tempo of --text-chords, 20-300 (required with it)")
    gen.add_argument("--time-sig", default=DEFAULT_TIME_SIG,
                     help="time signature of --text-chords (default: %(default)s)")
    gen.add_argument("--input-audio", type=Path, help="audio whose chords/melody to follow, or to continue")
    gen.add_argument("--continuation", action="store_true", help="continue --input-audio")
    gen.add_argument("--audio-start", type=float, default=0.0, metavar="SECONDS",
                     help="start of the part of --input-audio to use (default: %(default)s)")
    gen.add_argument("--audio-end", type=float, default=None, metavar="SECONDS",
                     help="end of the part of --input-audio to use (default: its end)")
    run = parser.add_argument_group("runtime")
    add_runtime_options(run)
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar or stage log")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="also log the details of each stage (e.g. every generation window)")
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
                            key_shift=args.key_shift, section_prompts=args.section_prompts,
                            song_bpm=args.song_bpm, **common)
    return GenerateRequest(duration=args.duration, text_chords=args.text_chords, bpm=args.bpm,
                           time_sig=args.time_sig, audio=args.input_audio, audio_start=args.audio_start,
                           audio_end=args.audio_end, continuation=args.continuation, **common)


def _check_audio(request: RemixRequest | GenerateRequest, max_duration: float) -> None:
    """Decode the song (or input audio) before any model loads, so that a missing, broken or
    too long file fails in a moment instead of after the models' 15 s; the pipeline decodes it
    again, which costs little next to loading the models."""
    from remixer.client_audio import load_clip, load_song

    if isinstance(request, RemixRequest):
        load_song(request.song, max_duration)
    elif request.audio is not None:
        load_clip(request, max_duration)


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
        from remixer.batch.cli import main as batch_main

        return batch_main(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # Set on our logger too: a program that configured logging before calling main keeps its own.
    logging.getLogger("remixer").setLevel(logging.WARNING if args.quiet else
                                          logging.DEBUG if args.verbose else logging.INFO)
    try:
        # Before torch and numpy load: their thread pools are sized once, as they start.
        configure_threads(args.threads)
        request = _request(args)
        _check_audio(request, args.max_duration)
        smoke = args.smoke or smoke_from_env()
        store = None if smoke else WeightsStore(args.weights_dir, offline=args.offline or None)
        if store is not None:
            # Before the model code loads (torch and audiocraft take seconds, tens on a busy
            # machine): a missing file fails at once, and a download starts at once.
            required, optional = weights_needed((request.model_version,), args.analysis_backend)
            store.require(required, optional=optional)
        from tqdm.contrib.logging import logging_redirect_tqdm

        from remixer.pipeline import Models, Pipeline
        from remixer.progress import ProgressBars

        models = Models.load(store, device=args.device, analysis_backend=args.analysis_backend,
                             preload=(request.model_version,), threads=args.threads, smoke=smoke)
        pipeline = Pipeline(models, max_duration=args.max_duration)
        # A bar per long stage (separation chunks, decoding steps), with the log lines above it.
        bars = ProgressBars(disable=args.quiet or None)
        with logging_redirect_tqdm(), tempfile.TemporaryDirectory(prefix="remixer-") as workdir:
            if isinstance(request, RemixRequest):
                result = pipeline.remix(request, Path(workdir), progress=bars)
            else:
                result = pipeline.generate(request, Path(workdir), progress=bars)
            placed = _place(result.outputs, args.output)
    except (ValueError, WeightsError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in placed:
        print(path)
    print(f"seed: {result.seed}", file=sys.stderr)
    if models.smoke:
        print(f"{_NOISE_BANNER}\n{result.analysis['smoke']}\n{_NOISE_BANNER}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
