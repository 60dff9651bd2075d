"""The README's main job: remix an example song built by this project's own synthesizer.

    python scripts/remix_example.py [--out example_output] [--smoke | --real] [--duration 30]

With the real weights (fetched into ``$REMIXER_WEIGHTS_DIR`` / ``weights/`` on first use) this is
a real remix. Where they cannot be fetched (no network, no GPU box), ``auto`` mode falls back to a
SMOKE RUN with tiny random models in the real file formats (the smoke switch,
:mod:`remixer.smoke`): every stage of the pipeline runs (separation, chords, beats, generation,
beat-sync, mix, export), but the music is noise from random weights. The output says loudly which
mode ran.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.synth import demo_song  # noqa: E402
from remixer.audio import export_audio  # noqa: E402
from remixer.pipeline import Models, Pipeline  # noqa: E402
from remixer.requests import RemixRequest, Sampling  # noqa: E402
from remixer.weights import WeightsError, WeightsStore  # noqa: E402

BANNER = "=" * 78


def _real_store() -> WeightsStore | None:
    """The real weights cache if the default remix's files are there or can be fetched."""
    store = WeightsStore(retries=0)
    try:
        store.group_paths("remix-default")
    except WeightsError as error:
        logging.getLogger(__name__).warning("real weights unavailable: %s", str(error).splitlines()[0])
        return None
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "example_output", help="output folder")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="force the tiny-weights smoke run")
    mode.add_argument("--real", action="store_true", help="require the real weights")
    parser.add_argument("--duration", type=float, default=None,
                        help="example song length in seconds (default: 30 real, 8 smoke)")
    parser.add_argument("--prompt", default="bossa nova, nylon guitar, brushed drums")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    store = None if args.smoke else _real_store()
    if store is None and args.real:
        print("error: --real was given but the real weights cannot be fetched "
              "(python -m remixer.weights fetch remix-default)", file=sys.stderr)
        return 2
    smoke = store is None
    if smoke:
        print(f"{BANNER}\nSMOKE RUN: tiny RANDOM models in the real formats (no real weights here).\n"
              f"Every stage runs for real, but the generated music is meaningless.\n{BANNER}")
    duration = args.duration or (8.0 if smoke else 30.0)
    song = demo_song(duration=duration, bpm=100.0)
    args.out.mkdir(parents=True, exist_ok=True)
    song_path = export_audio(song.audio, song.sample_rate, args.out / "example_song.wav", strategy=None)
    version = "chord" if smoke else "stereo-chord"
    pipeline = Pipeline(Models.load(store, preload=(version,), smoke=smoke))
    result = pipeline.remix(RemixRequest(song=song_path, prompt=args.prompt, model_version=version,
                                         sampling=Sampling(seed=0), return_instrumental=True,
                                         return_analysis=True),
                            args.out)
    print(BANNER)
    print(f"{'SMOKE RUN (tiny random models)' if smoke else 'REMIX'} of {song_path} ({duration:g} s)")
    for path in result.outputs:
        print(f"  wrote {path}")
    print("  stage timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    print(BANNER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
