"""MusicGen Remixer: remix a song in a new style with MusicGen Chord.

Pipeline modules, each with one job: `audio` (I/O, normalization, export), `weights` (model files),
`separation` (htdemucs stems), `beats` (the beat record and its decoder), `analysis` (bpm, beats,
downbeats), `chords` (chord conditioning), `generation` (MusicGen Chord / Melody), `beatsync`
(bar phase, downbeat and beat alignment + WSOLA), `mixing`,
and `pipeline` (the remix, used by `predict.py` and the CLI).
"""

__version__ = "0.1.0"
