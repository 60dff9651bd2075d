"""Beat-synchronise a generated instrumental to the song: downbeat + beat matching, or the audio
itself; WSOLA warp.

MusicGen keeps the prompt's tempo only roughly and drifts; the song's vocals do not. Each
generated downbeat is paired with a song downbeat by a monotonic alignment
(:func:`match_downbeats`), and the generated audio is time-warped (pytsmod's WSOLA, which keeps
pitch) so every paired generated downbeat lands on its song downbeat.

Given both sides' beats as well (:func:`match_beats`), two more things are fixed:

* **bar phase**: a tracker may put "1" on "3" of every bar of the take, or follow its off-beats.
  The take's downbeat labels are tried shifted by every whole number of beats within a bar (and,
  given the song's harmony, on the grid of midpoints between the take's beats). By timing alone,
  the shift that pairs the most downbeats, nearest, wins; given the song's harmony, another
  shift is taken only when its beat pairs make the take agree with the song clearly better
  (``PHASE_MARGIN``, :mod:`remixer.alignment`), so no half-beat move is made on a hunch
  (:func:`choose_bar_phase`);
* **drift inside a bar**: every generated beat between two paired downbeats is paired with the
  song beat it lands near (within ``BEAT_TOLERANCE`` of a beat) when the bar is mapped linearly,
  so the warp moves every beat, not only every bar line.

Given the song's harmony, a take is aligned even when no tracker reads its beats (pads, a solo
piano, a bass line alone) or they lead astray: the take's lag behind the song, followed window
by window through the harmony both share (:class:`remixer.alignment.Agreement`), pairs every
song beat with the moment of the take that sounds like it where the tracker paired too few of
them on that track; where it paired most, its beats off the track are dropped. The result records which method aligned the take and how much the aligned
take agrees with the song (``confidence``).

Outside the first and last pair the audio keeps its own speed: when the song's first downbeat
comes later, silence is prepended; when it comes earlier, the generated head is cut; the tail
likewise runs at speed 1 and is cut or zero-padded. So the anchors are strictly increasing on both
sides, whatever the sign of the offsets, and the output is exactly the requested length.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from remixer.alignment import Agreement, agreement
from remixer.audio import check_positive_int, fit_length, sanitize

# Song-side gap accepted when the tempo is unknown (the original Remixer's documented default).
FALLBACK_THRESHOLD = 0.75
# Below -80 dBFS a take's head counts as silent (see _wsola).
SILENCE = 1e-4
# Largest distance, in song beats, between a generated beat mapped through the downbeat pairs and
# the song beat it is paired with: MusicGen's +-2 % drift moves a beat by 0.08 beat in a bar,
# while a double-tempo off-beat sits half a beat away and must stay unpaired.
BEAT_TOLERANCE = 0.3
# Bar phases pairing at least this share of the most downbeats any phase pairs are compared by
# sound: a take's first or last bar may fall outside the song under one phase and not another.
PHASE_COUNT_SLACK = 0.9
# How much better (in Agreement.score units, the chroma's correlation) another bar phase must
# make the take agree with the song than the nearest one, to be taken.
PHASE_MARGIN = 0.05
# Below this confidence (Agreement.confidence) the audio's lag track is not trusted, nor when
# more than MAX_AT_EDGE of it sits at the edge of the lags searched (within the threshold).
MIN_TRACK_CONFIDENCE = 0.2
MAX_AT_EDGE = 0.25
# The lag track overrules a tracker's beats from this confidence on; below it only where it
# agrees with the song by PHASE_MARGIN more than the tracker's pairs do (the track still aligns
# a take the tracker paired nothing of). A low-passed take of chord stabs: track 0.30, 84 ms off,
# tracker 0.28 and right to 27 ms; a low-passed take at 200 BPM: track 0.31 and right, tracker
# 0.14 and a beat off.
MIN_OVERRIDE_CONFIDENCE = 0.4
# Where the tracker's beats agree with the audio's lag track for at least this share of the
# song's beats, those beats alone are kept; below it the track pairs the rest too.
MIN_TRACKED_SHARE = 0.9
# A tracker's pair further than this share of a beat off the audio's lag track is off it: a
# tracker reads soft attacks (a take without percussion) 35-40 ms late at 170 BPM, within
# 0.15 beat but not 0.08, while the track follows the chords to a frame or two.
TRACK_TOLERANCE = 0.08


@dataclass
class SyncResult:
    """Outcome of :func:`beat_sync`.

    Attributes
    ----------
    audio : np.ndarray [shape=(channels, out_length)], float32
        The synchronised (or, when ``warped`` is False, merely length-fitted) audio.
    anchors : np.ndarray [shape=(2, K)], int64
        The warp map: row 0 sample positions in the generated audio (negative / past its end where
        silence was padded), row 1 the output sample positions they were moved to. Empty (2, 0)
        when not warped.
    n_matched : int
        Generated downbeats paired with a song downbeat.
    warped : bool
        Whether the audio was time-warped.
    reason : str
        Human-readable account of what was done and why, for the pipeline's log.
    method : str
        What aligned the take: ``"downbeats"`` (downbeats only), ``"beats"`` (the take's beats
        from its tracker), ``"audio"`` (the lag track of :mod:`remixer.alignment`), or
        ``"none"`` (not warped).
    confidence : float or None
        Agreement of the aligned take with the song's harmony, 0..1
        (:meth:`remixer.alignment.Agreement.confidence`); ``None`` without the song's audio.
    """

    audio: np.ndarray
    anchors: np.ndarray
    n_matched: int
    warped: bool
    reason: str
    method: str = "none"
    confidence: float | None = None


def default_threshold(bpm: float | None, beats: float = 1.1) -> float:
    """Largest generated-to-song downbeat gap (seconds) still treated as the same downbeat.

    Parameters
    ----------
    bpm : float or None
        The song's tempo; ``None`` gives ``FALLBACK_THRESHOLD`` (0.75 s).
    beats : float > 0
        Gap in beat periods: the default 1.1 beats (0.55 s at 120 BPM) cannot pair a downbeat with
        the one a bar away, yet tolerates the drift of one bar.
    """
    if not beats > 0:
        raise ValueError(f"beats must be positive, got {beats}")
    if bpm is None:
        return FALLBACK_THRESHOLD
    if not (np.isfinite(bpm) and bpm > 0):
        raise ValueError(f"bpm must be a positive number or None, got {bpm}")
    return float(beats * 60.0 / bpm)


def _times(name: str, times: np.ndarray) -> np.ndarray:
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of times in seconds, got shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise ValueError(f"{name} contains NaN or infinite times")
    if np.any(np.diff(times) <= 0):
        raise ValueError(f"{name} must be strictly increasing")
    return times


def match_downbeats(generated: np.ndarray, reference: np.ndarray, threshold: float) -> np.ndarray:
    """Pair generated downbeats with reference downbeats by a monotonic alignment.

    Dynamic programming over both sequences maximises the number of pairs and, among alignments
    with that many, minimises the total ``|g - r|``. Both columns of the result are strictly
    increasing (pairs never cross), every reference and every generated downbeat is used at most
    once, and ``|g - r| <= threshold`` for each pair. Unmatched downbeats simply get no pair.

    Parameters
    ----------
    generated, reference : np.ndarray [shape=(n,)], [shape=(m,)]
        Strictly increasing downbeat times in seconds.
    threshold : float >= 0
        Largest accepted gap in seconds.

    Returns
    -------
    pairs : np.ndarray [shape=(K, 2)]
        ``(generated_time, reference_time)`` rows in time order.

    Raises
    ------
    ValueError
        On non-finite, non-increasing or non-1-D times, or a negative / non-finite threshold.
    """
    generated = _times("generated downbeats", generated)
    reference = _times("reference downbeats", reference)
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a finite number of seconds >= 0, got {threshold}")
    n, m = generated.size, reference.size
    if n == 0 or m == 0:
        return np.zeros((0, 2))
    gap = np.abs(generated[:, None] - reference[None, :])
    # One more pair always outweighs any total offset, so the score is (pairs, -offset) in order.
    pair_value = (min(n, m) + 1) * threshold + 1.0
    gain = np.where(gap <= threshold, pair_value - gap, -np.inf)
    # score[i, j]: best alignment of the first i generated and first j reference downbeats.
    score = np.zeros((n + 1, m + 1))
    for i in range(1, n + 1):
        candidates = np.maximum(score[i - 1, 1:], score[i - 1, :-1] + gain[i - 1])
        score[i, 1:] = np.maximum.accumulate(candidates)
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        if score[i, j] == score[i, j - 1]:
            j -= 1
        elif score[i, j] == score[i - 1, j]:
            i -= 1
        else:
            pairs.append((generated[i - 1], reference[j - 1]))
            i, j = i - 1, j - 1
    return np.array(pairs[::-1], dtype=np.float64).reshape(-1, 2)


@dataclass(frozen=True)
class BarPhase:
    """The generated beat grid and downbeats :func:`choose_bar_phase` settled on.

    Attributes
    ----------
    beats, downbeats : np.ndarray
        Beat and downbeat times of the generated audio (downbeats a subset of beats).
    shift : float
        How far the downbeat labels moved along the tracker's beats, in beats: whole numbers
        relabel the tracker's beats, halves put the grid on the midpoints between them.
    """

    beats: np.ndarray
    downbeats: np.ndarray
    shift: float


def choose_bar_phase(generated_beats: np.ndarray, generated_downbeats: np.ndarray,
                     reference_beats: np.ndarray, reference_downbeats: np.ndarray,
                     threshold: float, tolerance: float, *,
                     heard: Agreement | None = None) -> BarPhase:
    """The generated beats and downbeats, relabelled to best explain the song's downbeats.

    Each shift ``k`` (``-(B - 1) .. B - 1`` beats, ``B`` the take's bar length in beats) moves
    every downbeat label ``k`` beats along ``generated_beats``. By timing, the shift pairing the
    most downbeats (:func:`match_downbeats`) wins, ties going to the tracker's own labels, then
    to the smaller total gap: the nearest phase.

    Timing alone cannot tell a take half a beat early with "1" on "3" from one half a beat late
    with "1" on "2", nor a tracker that followed the off-beats (a take's hi-hats) from one on
    the beat. With ``heard`` (the take's agreement with the song's harmony), the tracker's grid
    and the grid of midpoints between its beats (when ``threshold`` allows half a beat) are both
    tried, and among the shifts pairing at least ``PHASE_COUNT_SLACK`` of the most downbeats the
    one whose beat pairs (:func:`match_beats`) make the take agree best with the song wins, but
    only by ``PHASE_MARGIN`` over the nearest phase: a move needs evidence.
    """
    unchanged = BarPhase(generated_beats, generated_downbeats, 0.0)
    if generated_beats.size == 0 or generated_downbeats.size == 0:
        return unchanged
    index = np.clip(np.searchsorted(generated_beats, generated_downbeats), 0,
                    generated_beats.size - 1)
    # Downbeats that are not among the beats: no beat grid to shift the labels along.
    if np.abs(generated_beats[index] - generated_downbeats).max() > 1e-6:
        return unchanged
    bar = int(round(np.median(np.diff(index)))) if index.size > 1 else 1
    grids = [(generated_beats, 0.0)]
    # The midpoint grid moves the take's detected beats by half a beat: only where the caller's
    # threshold allows a move that large (the default 1.1 beats does; a tight one does not).
    if (heard is not None and generated_beats.size > 1
            and threshold >= 0.5 * float(np.median(np.diff(generated_beats)))):
        # Beat i's midpoint grid entry is half a beat after beat i.
        grids.append(((generated_beats[1:] + generated_beats[:-1]) / 2, 0.5))
    candidates = []
    for beats, half in grids:
        for shift in range(-(bar - 1), bar):
            shifted = index + shift
            downbeats = beats[shifted[(shifted >= 0) & (shifted < beats.size)]]
            pairs = match_downbeats(downbeats, reference_downbeats, threshold)
            gap = float(np.abs(pairs[:, 0] - pairs[:, 1]).sum())
            candidates.append(((len(pairs), shift == 0 and half == 0, -gap),
                               BarPhase(beats, downbeats, shift + half), pairs))
    nearest = max(candidates, key=lambda candidate: candidate[0])
    most = nearest[0][0]
    if heard is None or most == 0:
        return nearest[1]

    def likeness(candidate: tuple) -> float:
        _, phase, pairs = candidate
        beat_pairs = match_beats(phase.beats, reference_beats, pairs, tolerance)
        return heard.score(beat_pairs[:, 0], beat_pairs[:, 1])

    eligible = [c for c in candidates if c[0][0] >= PHASE_COUNT_SLACK * most]
    best = max(eligible, key=likeness)
    return best[1] if likeness(best) >= likeness(nearest) + PHASE_MARGIN else nearest[1]


def match_beats(generated_beats: np.ndarray, reference_beats: np.ndarray,
                downbeat_pairs: np.ndarray, tolerance: float) -> np.ndarray:
    """Pair beats between (and around) paired downbeats.

    Generated beats are mapped through the downbeat pairs (linearly between two pairs, at speed 1
    before the first and after the last) and matched monotonically (:func:`match_downbeats`)
    with the song's beats of the same span, within ``tolerance`` seconds. The downbeat pairs are
    kept as they are, so the result pairs every downbeat pair and never crosses one.

    Parameters
    ----------
    generated_beats, reference_beats : np.ndarray
        Strictly increasing beat times in seconds.
    downbeat_pairs : np.ndarray [shape=(K, 2)]
        Output of :func:`match_downbeats`, K >= 1.
    tolerance : float >= 0

    Returns
    -------
    pairs : np.ndarray [shape=(N, 2)]
        ``(generated_time, reference_time)`` rows, both columns strictly increasing, N >= K.
    """
    sources, targets = downbeat_pairs[:, 0], downbeat_pairs[:, 1]
    mapped = np.interp(generated_beats, sources, targets)
    mapped = np.where(generated_beats < sources[0], generated_beats + targets[0] - sources[0],
                      mapped)
    mapped = np.where(generated_beats > sources[-1], generated_beats + targets[-1] - sources[-1],
                      mapped)
    edges = np.concatenate([[-np.inf], sources, [np.inf]])
    ref_edges = np.concatenate([[-np.inf], targets, [np.inf]])
    pairs = [downbeat_pairs]
    for a in range(len(edges) - 1):
        inside = (generated_beats > edges[a]) & (generated_beats < edges[a + 1])
        ref_inside = (reference_beats > ref_edges[a]) & (reference_beats < ref_edges[a + 1])
        if not inside.any() or not ref_inside.any():
            continue
        found = match_downbeats(mapped[inside], reference_beats[ref_inside], tolerance)
        # Back from mapped times to the generated beats they came from.
        lookup = dict(zip(mapped[inside], generated_beats[inside]))
        pairs.append(np.array([[lookup[m], r] for m, r in found]).reshape(-1, 2))
    merged = np.concatenate(pairs)
    return merged[np.argsort(merged[:, 0], kind="stable")]


def _anchor_map(pairs: np.ndarray, out_length: int) -> tuple[np.ndarray, int]:
    """Strictly increasing (2, K) sample anchors with speed-1 head and tail, and the pairs kept."""
    kept: list[tuple[int, int]] = []
    for source, target in pairs:
        # Targets must leave room for the end anchor at out_length - 1.
        increasing = not kept or (source > kept[-1][0] and target > kept[-1][1])
        if increasing and 0 <= target < out_length - 1:
            kept.append((int(source), int(target)))
    if not kept:
        return np.zeros((2, 0), dtype=np.int64), 0
    first_s, first_t = kept[0]
    last_s, last_t = kept[-1]
    head = [] if first_t == 0 else [(first_s - first_t, 0)]
    tail = [(last_s + (out_length - 1 - last_t), out_length - 1)]
    return np.array(head + kept + tail, dtype=np.int64).T, len(kept)


def _wsola(audio: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """``pytsmod.wsola`` over the anchor map, with the silent head added after warping.

    On silence WSOLA's similarity search is flat and settles on its largest lag (pytsmod's
    512-sample tolerance); the lag then persists into the music, which would land ~12 ms early.
    So the head of the map that is silent (padding before the take's start, where the map
    reaches there, and the take's own leading silence) is not warped but prepended as zeros.
    """
    import pytsmod

    sources, targets = anchors.astype(np.float64)
    loud = np.flatnonzero(np.abs(audio).max(axis=0) > SILENCE)
    onset = int(loud[0]) if loud.size else audio.shape[1]
    lead = 0
    if onset > sources[0]:
        lead = int(round(np.interp(onset, sources, targets)))
        keep = (anchors[0] - onset >= 1) & (anchors[1] - lead >= 1)
        anchors = np.concatenate([np.zeros((2, 1), dtype=np.int64),
                                  anchors[:, keep] - np.array([[onset], [lead]])], axis=1)
        audio = audio[:, onset:]
        if anchors.shape[1] < 2 or audio.shape[1] == 0:
            return np.zeros((audio.shape[0], lead), dtype=np.float32)
    # Silence after the take's end, where the map reaches there; pytsmod transposes any array
    # with more rows than columns, so a tiny clip gets extra zeros.
    pad_right = max(0, int(anchors[0, -1]) + 1 - audio.shape[1], audio.shape[0] + 1 - audio.shape[1])
    warped = pytsmod.wsola(np.pad(audio, ((0, 0), (0, pad_right))), anchors)
    warped = np.nan_to_num(np.asarray(warped, dtype=np.float32).reshape(audio.shape[0], -1))
    return np.pad(warped, ((0, 0), (lead, 0)))


def beat_sync(generated: np.ndarray, sample_rate: int, generated_downbeats: np.ndarray,
              reference_downbeats: np.ndarray, out_length: int, *, threshold: float,
              generated_beats: np.ndarray | None = None,
              reference_beats: np.ndarray | None = None,
              reference_audio: tuple[np.ndarray, int] | None = None,
              reach: float | None = None) -> SyncResult:
    """Warp ``generated`` so its downbeats (and, given both sides' beats, its beats) land on
    the song's.

    Parameters
    ----------
    generated : np.ndarray [shape=(channels, samples)]
        The generated instrumental. NaN/Inf samples (a diverged decoder) are zeroed / clipped.
    sample_rate : int > 0
        Rate of ``generated`` and of the output.
    generated_downbeats, reference_downbeats : np.ndarray
        Strictly increasing downbeat times in seconds, of ``generated`` and of the song.
    out_length : int > 0
        Output length in samples (the song's length at ``sample_rate``).
    threshold : float >= 0
        See :func:`match_downbeats`; usually :func:`default_threshold` of the song's tempo.
    generated_beats, reference_beats : np.ndarray or None
        Every beat time (downbeats included) of ``generated`` and of the song; give both or
        neither. With them the bar phase is chosen (:func:`choose_bar_phase`) and beats are
        anchored too (:func:`match_beats`, ``BEAT_TOLERANCE`` of the song's beat period).
    reference_audio : (np.ndarray, int) or None
        The song's harmony (its vocals + bass + other stems) and its rate; with the beats, the
        bar phase needs evidence from the audio, and a take whose beats are missing or astray is
        aligned by the audio itself (see the module docstring).
    reach : float or None
        How far (seconds) the audio alignment may find the take off the song; default
        ``threshold``. A take starting a quarter second early and drifting 2 % is more than the
        default threshold (1.1 beats) off at 200 BPM, so the pipeline lets the audio reach at
        least ``FALLBACK_THRESHOLD`` unless the client set the threshold.

    Returns
    -------
    result : SyncResult
        ``audio`` is finite float32 of exactly ``out_length`` samples. Without downbeats in the
        song, without any pair within ``threshold`` (and no confident audio alignment), it is
        ``generated`` unwarped, trimmed or zero-padded, and ``reason`` says why.

    Raises
    ------
    ValueError
        On malformed audio, rate, length, threshold or downbeat arrays.
    """
    generated = np.asarray(generated)
    if generated.ndim != 2 or generated.shape[0] == 0:
        raise ValueError(f"generated audio must be shaped (channels, samples), "
                         f"got {generated.shape}")
    if not np.issubdtype(generated.dtype, np.floating):
        raise ValueError(f"generated audio must be floating point, got dtype {generated.dtype}")
    check_positive_int(sample_rate, "sample_rate")
    check_positive_int(out_length, "out_length")
    if (generated_beats is None) != (reference_beats is None):
        raise ValueError("give both generated_beats and reference_beats, or neither")
    if reference_audio is not None and generated_beats is None:
        raise ValueError("reference_audio is used only with generated_beats and reference_beats")
    audio = sanitize(generated)
    generated_downbeats = _times("generated downbeats", generated_downbeats)
    reference_downbeats = _times("reference downbeats", reference_downbeats)
    if reference_downbeats.size == 0:
        return _unwarped(audio, out_length, "not warped: no downbeats detected in the song")
    if generated_beats is None:
        pairs = match_downbeats(generated_downbeats, reference_downbeats, threshold)
        return _warp(audio, sample_rate, out_length, _Alignment(
            pairs, pairs[:, 1], "downbeats", None,
            _paired(len(pairs), generated_downbeats.size, threshold)))
    generated_beats = _times("generated beats", generated_beats)
    reference_beats = _times("reference beats", reference_beats)
    heard = None
    if reference_audio is not None and reference_beats.size:
        harmony, harmony_rate = reference_audio
        check_positive_int(harmony_rate, "reference_audio's sample rate")
        heard = agreement(audio, sample_rate, sanitize(np.atleast_2d(harmony)), harmony_rate,
                          max_lag=threshold if reach is None else reach)
    tracked = _by_beats(generated_beats, generated_downbeats, reference_beats,
                        reference_downbeats, threshold, heard)
    if heard is not None:
        tracked = _with_audio(tracked, heard, reference_beats, reference_downbeats,
                              audio.shape[1] / sample_rate)
    return _warp(audio, sample_rate, out_length, tracked)


@dataclass(frozen=True)
class _Alignment:
    """Pairs (generated time, song time) to warp by, the song downbeats among them, and how
    they were found."""

    pairs: np.ndarray
    downbeat_targets: np.ndarray
    method: str
    confidence: float | None
    account: str


def _by_beats(generated_beats: np.ndarray, generated_downbeats: np.ndarray,
              reference_beats: np.ndarray, reference_downbeats: np.ndarray, threshold: float,
              heard: Agreement | None) -> _Alignment:
    """The tracker's alignment: bar phase, downbeat pairs, then beat pairs."""
    period = float(np.median(np.diff(reference_beats))) if reference_beats.size > 1 else 0.0
    phase = choose_bar_phase(generated_beats, generated_downbeats, reference_beats,
                             reference_downbeats, threshold, BEAT_TOLERANCE * period, heard=heard)
    pairs = match_downbeats(phase.downbeats, reference_downbeats, threshold)
    downbeat_targets = pairs[:, 1]
    if pairs.size and reference_beats.size > 1:
        pairs = match_beats(phase.beats, reference_beats, pairs, BEAT_TOLERANCE * period)
    moved = "" if phase.shift == 0 else f", bar phase moved by {phase.shift:+g} beats"
    account = _paired(len(downbeat_targets), len(phase.downbeats), threshold) + moved
    confidence = None
    if heard is not None and len(pairs):
        confidence = heard.confidence(heard.score(pairs[:, 0], pairs[:, 1]))
    return _Alignment(pairs, downbeat_targets, "beats", confidence, account)


def _with_audio(tracked: _Alignment, heard: Agreement, reference_beats: np.ndarray,
                reference_downbeats: np.ndarray, take_seconds: float) -> _Alignment:
    """The tracker's pairs checked against the audio's lag track: pairs more than
    ``TRACK_TOLERANCE`` of a beat off the track are dropped; where fewer than
    ``MIN_TRACKED_SHARE`` of the song's beats keep a pair, every other song beat is paired along
    the track. The tracker's pairs as they are when the track is not trusted, or is weak
    (``MIN_OVERRIDE_CONFIDENCE``) and agrees with the song no better than they do."""
    track = heard.track()
    confidence = heard.confidence(track.score)
    doubt = ""
    if confidence < MIN_TRACK_CONFIDENCE:
        doubt = f"its confidence {confidence:.2f} is below {MIN_TRACK_CONFIDENCE}"
    elif track.at_edge > MAX_AT_EDGE:
        doubt = (f"its lag sits at the threshold in {100 * track.at_edge:.0f} % of the song, "
                 f"so the take may lie further off")
    if doubt:
        if len(tracked.pairs):
            return tracked
        return _Alignment(tracked.pairs, tracked.downbeat_targets, tracked.method,
                          tracked.confidence,
                          f"{tracked.account}; the audio alignment is not trusted either: {doubt}")
    period = float(np.median(np.diff(reference_beats))) if reference_beats.size > 1 else 0.0
    lag = np.interp(reference_beats, heard.centres, track.lags)
    on_track = np.zeros(reference_beats.size, dtype=bool)
    kept = np.zeros((0, 2))
    if len(tracked.pairs):
        song_lag = np.interp(tracked.pairs[:, 1], heard.centres, track.lags)
        agree = np.abs(tracked.pairs[:, 0] - tracked.pairs[:, 1] - song_lag) <= TRACK_TOLERANCE * period
        kept = tracked.pairs[agree]
        # A weak track overrules the tracker only where it clearly agrees better with the song.
        convincing = (confidence >= MIN_OVERRIDE_CONFIDENCE
                      or track.score >= heard.score(*tracked.pairs.T) + PHASE_MARGIN)
        if agree.all() or not convincing:
            return tracked
        on_track = np.isin(reference_beats, kept[:, 1])
        if on_track.mean() >= MIN_TRACKED_SHARE:
            # Mostly right: the beats off the track are dropped, the warp bridges them.
            downbeats = np.intersect1d(tracked.downbeat_targets, kept[:, 1])
            return _Alignment(kept, downbeats, tracked.method,
                              heard.confidence(heard.score(*kept.T)),
                              f"{tracked.account}; {(~agree).sum()} of the take's beats off the "
                              f"audio's lag track dropped")
    sources = reference_beats + lag
    fill = ~on_track & (sources >= 0) & (sources <= take_seconds)
    pairs = np.concatenate([kept, np.stack([sources[fill], reference_beats[fill]], axis=1)])
    pairs = pairs[np.argsort(pairs[:, 1])]
    # A kept tracker pair and a track pair next to it must not cross.
    increasing = np.concatenate([[True], np.diff(pairs[:, 0]) > 0])
    pairs = pairs[increasing]
    downbeats = np.intersect1d(reference_downbeats, pairs[:, 1])
    if not len(kept):
        why = ("no generated downbeat paired with the song's" if not len(tracked.pairs)
               else "none of the take's beats agrees with it")
        return _Alignment(pairs, downbeats, "audio", heard.confidence(heard.score(*pairs.T)),
                          f"aligned by the audio ({why}): every song beat paired along the "
                          f"take's lag track")
    return _Alignment(pairs, downbeats, "beats and audio",
                      heard.confidence(heard.score(*pairs.T)),
                      f"{tracked.account}; {fill.sum()} of {reference_beats.size} song beats "
                      f"paired along the audio's lag track where the take's beats were missing "
                      f"or off it")


def _paired(n_pairs: int, n_generated: int, threshold: float) -> str:
    """How many generated downbeats paired, or why none did."""
    if n_generated == 0:
        return "no downbeats detected in the generated audio"
    if n_pairs == 0:
        return f"no generated downbeat within {threshold:.3f} s of a song downbeat"
    return f"{n_pairs} of {n_generated} generated downbeats matched within {threshold:.3f} s"


def _unwarped(audio: np.ndarray, out_length: int, reason: str, *,
              confidence: float | None = None) -> SyncResult:
    return SyncResult(audio=fit_length(audio, out_length), anchors=np.zeros((2, 0), dtype=np.int64),
                      n_matched=0, warped=False, reason=reason, method="none",
                      confidence=confidence)


def _warp(audio: np.ndarray, sample_rate: int, out_length: int, found: _Alignment) -> SyncResult:
    """WSOLA along ``found``'s pairs, or the audio unwarped with the reason."""
    anchors, n_anchored = _anchor_map(np.round(found.pairs * sample_rate).astype(np.int64),
                                      out_length)
    if n_anchored == 0:
        inside = " inside the output" if len(found.pairs) else ""
        return _unwarped(audio, out_length, f"not warped: {found.account}{inside}",
                         confidence=found.confidence)
    # Downbeat pairs inside the output (where _anchor_map keeps pairs).
    targets = np.round(found.downbeat_targets * sample_rate)
    n_matched = (n_anchored if found.method == "downbeats"
                 else int(np.sum((targets >= 0) & (targets < out_length - 1))))
    warped = _wsola(audio, anchors)
    confidence = "" if found.confidence is None else f", confidence {found.confidence:.2f}"
    reason = f"warped by {found.method}{confidence}: {found.account}"
    if found.method != "downbeats":
        reason += f"; {n_anchored} anchors" + (" with beats" if found.method == "beats" else "")
    return SyncResult(audio=fit_length(warped, out_length), anchors=anchors, n_matched=n_matched,
                      warped=True, reason=reason, method=found.method,
                      confidence=found.confidence)
