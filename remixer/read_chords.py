"""Command line: the chords of a song, read by BTC, as MIREX ``.lab`` or JSON.

    python -m remixer.read_chords SONG [--vocab {small,large}] [--weights PATH]
                                       [--lab OUT.lab | --json OUT.json]

The song is decoded like a remix's (:func:`remixer.audio.load_audio`). Without ``--weights`` the
published checkpoint comes from the weights cache (:mod:`remixer.weights`: ``btc-model`` for
``small``, ``btc-model-large-voca`` for ``large``). Without ``--lab``/``--json`` the ``.lab``
text goes to standard output. The ``btc`` package itself stays free of the product.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from btc.recognizer import ChordRecognizer

WEIGHT_NAMES = {"small": "btc-model", "large": "btc-model-large-voca"}
VOCAB_SIZES = {"small": 25, "large": 170}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m remixer.read_chords",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("song", type=Path, help="audio file (wav, flac, mp3, ...)")
    parser.add_argument("--vocab", choices=sorted(WEIGHT_NAMES), default="large",
                        help="small: 25 maj/min classes; large: 170 classes (default)")
    parser.add_argument("--weights", type=Path, help="BTC checkpoint (.pt) instead of the cached one")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--lab", type=Path, help="write MIREX .lab here")
    output.add_argument("--json", type=Path, help="write JSON segments here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (errors exit with status 2 and a one-line message)."""
    parser = _parser()
    args = parser.parse_args(argv)
    # Imported here so `--help` and argument errors stay fast.
    from remixer.audio import load_audio
    from remixer.weights import WeightsError, WeightsStore

    try:
        weights = args.weights or WeightsStore().path(WEIGHT_NAMES[args.vocab])
        recognizer = ChordRecognizer.from_checkpoint(weights, device=args.device)
        if len(recognizer.vocab) != VOCAB_SIZES[args.vocab]:
            raise ValueError(
                f"{weights} has {len(recognizer.vocab)} chord classes but --vocab {args.vocab} "
                f"expects {VOCAB_SIZES[args.vocab]}"
            )
        # A silent song is valid input here: its answer is one N segment.
        wav, sample_rate = load_audio(args.song, channels=1, allow_silent=True)
        segments = recognizer.recognize(wav, sample_rate)
        if args.json:
            args.json.write_text(ChordRecognizer.to_json(segments) + "\n")
        elif args.lab:
            args.lab.write_text(ChordRecognizer.to_lab(segments))
        else:
            sys.stdout.write(ChordRecognizer.to_lab(segments))
    except (OSError, ValueError, WeightsError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
