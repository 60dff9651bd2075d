import itertools

import numpy as np
import pytest

from fixtures.music import noise, synth_drifting_song, synth_song
from remixer.analysis.madmom import MadmomAnalyzer
from remixer.beatsync import beat_sync, default_threshold, match_downbeats

SR = 32_000


@pytest.fixture(scope="module")
def madmom() -> MadmomAnalyzer:
    return MadmomAnalyzer()


@pytest.fixture(scope="module")
def songs():
    """The song (120 BPM, 44.1 kHz) and a 'generated' take drifting 112 -> 128 BPM (32 kHz)."""
    return synth_song(120, 4, duration=12.0), synth_drifting_song(112, 128, 4, duration=12.0)


def brute_force_best(generated, reference, threshold):
    """(pairs, -total offset) of the best monotonic matching, by enumeration."""
    best = (0, 0.0)
    for k in range(1, min(len(generated), len(reference)) + 1):
        for gi in itertools.combinations(range(len(generated)), k):
            for ri in itertools.combinations(range(len(reference)), k):
                gaps = [abs(generated[a] - reference[b]) for a, b in zip(gi, ri)]
                if max(gaps) <= threshold:
                    best = max(best, (k, -sum(gaps)))
    return best


def check_matching(pairs, generated, reference, threshold):
    assert pairs.shape[1] == 2
    assert np.all(np.diff(pairs[:, 0]) > 0) and np.all(np.diff(pairs[:, 1]) > 0)
    assert len(set(pairs[:, 1])) == len(pairs)
    assert np.all(np.abs(pairs[:, 0] - pairs[:, 1]) <= threshold)
    assert set(pairs[:, 0]) <= set(generated) and set(pairs[:, 1]) <= set(reference)


def test_match_downbeats_is_optimal_and_monotonic():
    rng = np.random.default_rng(0)
    for _ in range(150):
        generated = np.sort(rng.choice(np.arange(0, 8, 0.25), rng.integers(0, 6), replace=False))
        reference = np.sort(rng.choice(np.arange(0, 8, 0.2), rng.integers(0, 6), replace=False))
        threshold = float(rng.uniform(0.1, 1.5))
        pairs = match_downbeats(generated, reference, threshold)
        check_matching(pairs, generated, reference, threshold)
        count, neg_offset = brute_force_best(generated, reference, threshold)
        assert len(pairs) == count
        assert -np.abs(pairs[:, 0] - pairs[:, 1]).sum() == pytest.approx(neg_offset)


def test_match_downbeats_beats_greedy_nearest():
    # Both generated downbeats are nearest to 1.2; the old greedy rule dropped one of them.
    pairs = match_downbeats(np.array([1.0, 1.3]), np.array([1.2, 1.5]), 0.35)
    np.testing.assert_allclose(pairs, [[1.0, 1.2], [1.3, 1.5]])
    # Offsets in either direction; beyond the threshold nothing pairs.
    np.testing.assert_allclose(match_downbeats(np.array([2.0, 4.0]), np.array([2.4, 3.7]), 0.5),
                               [[2.0, 2.4], [4.0, 3.7]])
    assert match_downbeats(np.array([1.0]), np.array([1.51]), 0.5).shape == (0, 2)


@pytest.mark.parametrize("generated,reference,threshold,match", [
    (np.array([2.0, 1.0]), np.array([1.0]), 0.5, "strictly increasing"),
    (np.array([1.0, 1.0]), np.array([1.0]), 0.5, "strictly increasing"),
    (np.array([[1.0]]), np.array([1.0]), 0.5, "1-D"),
    (np.array([1.0]), np.array([np.nan]), 0.5, "NaN"),
    (np.array([1.0]), np.array([1.0]), -0.1, "threshold"),
])
def test_match_downbeats_rejects_bad_input(generated, reference, threshold, match):
    with pytest.raises(ValueError, match=match):
        match_downbeats(generated, reference, threshold)


def test_default_threshold():
    assert default_threshold(120) == pytest.approx(0.55)
    assert default_threshold(97.5, beats=1.0) == pytest.approx(60 / 97.5)
    assert default_threshold(None) == 0.75
    with pytest.raises(ValueError, match="bpm"):
        default_threshold(0.0)


def test_sync_moves_known_downbeats_onto_the_song(songs, madmom):
    song, generated = songs
    out_length = int(12.0 * SR)
    result = beat_sync(generated.audio, SR, generated.downbeats, song.downbeats, out_length,
                       threshold=default_threshold(120))
    assert result.warped and result.n_matched == 6 == len(song.downbeats)
    assert result.audio.shape == (2, out_length) and result.audio.dtype == np.float32
    assert np.all(np.isfinite(result.audio))
    assert np.all(np.diff(result.anchors, axis=1) > 0)
    # Through the warp map, generated downbeats land on the song's to the sample.
    landed = np.interp(generated.downbeats * SR, *result.anchors) / SR
    np.testing.assert_allclose(landed, song.downbeats, atol=1.5 / SR)
    # And the audio agrees: re-detected downbeats sit on the song's true and detected ones.
    detected = madmom.analyze(result.audio, SR).downbeats
    assert len(detected) == len(song.downbeats)
    assert np.median(np.abs(detected - song.downbeats)) <= 0.020
    detected_song = madmom.analyze(song.audio, song.sample_rate).downbeats
    assert np.median(np.abs(detected - detected_song)) <= 0.020


def test_sync_with_detected_downbeats(songs, madmom):
    """The pipeline's path: both sides' downbeats come from the analyser."""
    song, generated = songs
    song_beats = madmom.analyze(song.audio, song.sample_rate)
    generated_beats = madmom.analyze(generated.audio, SR)
    before = np.abs(generated_beats.downbeats - song.downbeats).max()
    result = beat_sync(generated.audio, SR, generated_beats.downbeats, song_beats.downbeats,
                       int(12.0 * SR), threshold=default_threshold(song_beats.bpm))
    after = madmom.analyze(result.audio, SR).downbeats
    assert before > 0.15  # the drift was real
    assert np.median(np.abs(after - song.downbeats)) <= 0.020


def test_sync_offsets_either_way_keep_head_and_tail_at_speed():
    audio = np.tile(np.linspace(-0.5, 0.5, 8 * SR, dtype=np.float32), (2, 1))
    out_length = 9 * SR
    # Song starts later: silence is prepended, no stretching of the intro.
    late = beat_sync(audio, SR, np.array([0.5, 2.5]), np.array([1.0, 3.0]), out_length,
                     threshold=0.6)
    assert late.anchors[:, 0].tolist() == [-SR // 2, 0]
    assert np.all(late.audio[:, :SR // 2 - 1024] == 0) and late.audio.shape == (2, out_length)
    # Song starts earlier: the generated head is cut instead of squeezed.
    early = beat_sync(audio, SR, np.array([1.0, 3.0]), np.array([0.5, 2.5]), out_length,
                      threshold=0.6)
    assert early.anchors[:, 0].tolist() == [SR // 2, 0]
    assert early.audio.shape == (2, out_length)
    # Tail runs at speed 1 past the last pair, then zero padding (generated is 8 s, output 9 s).
    tail_source = 3 * SR + (out_length - 1 - int(2.5 * SR))
    assert early.anchors[:, -1].tolist() == [tail_source, out_length - 1]
    assert np.all(early.audio[:, -SR // 2 + 1024:] == 0)


def test_sync_reference_downbeat_at_zero_is_not_duplicated():
    audio = np.random.default_rng(0).uniform(-0.3, 0.3, (1, 4 * SR)).astype(np.float32)
    result = beat_sync(audio, SR, np.array([0.2, 2.1]), np.array([0.0, 2.0]), 4 * SR, threshold=0.5)
    assert result.anchors[:, 0].tolist() == [int(0.2 * SR), 0]
    assert np.all(np.diff(result.anchors, axis=1) > 0)
    assert result.audio.shape == (1, 4 * SR)


@pytest.mark.parametrize("generated_downbeats,reference_downbeats,reason", [
    (np.zeros(0), np.array([0.5, 2.5]), "generated"),
    (np.array([0.5, 2.5]), np.zeros(0), "song"),
    (np.array([0.5, 2.5]), np.array([1.5, 3.5]), "within 0.300 s"),
])
def test_sync_without_usable_downbeats_fits_length_only(generated_downbeats, reference_downbeats,
                                                        reason):
    audio = np.random.default_rng(1).uniform(-0.3, 0.3, (2, 3 * SR)).astype(np.float32)
    for out_length in (2 * SR, 4 * SR):
        result = beat_sync(audio, SR, generated_downbeats, reference_downbeats, out_length,
                           threshold=0.3)
        assert not result.warped and result.n_matched == 0 and result.anchors.shape == (2, 0)
        assert reason in result.reason and result.reason.startswith("not warped")
        assert result.audio.shape == (2, out_length)
        n = min(out_length, audio.shape[1])
        np.testing.assert_array_equal(result.audio[:, :n], audio[:, :n])
        assert not result.audio[:, n:].any()


def test_noise_gives_empty_beats_and_unwarped_sync(madmom):
    wav = noise(6.0, sample_rate=SR, seed=5)
    beats = madmom.analyze(wav, SR)
    assert beats.empty
    result = beat_sync(wav, SR, beats.downbeats, np.array([0.5, 2.5, 4.5]), 6 * SR, threshold=0.55)
    assert not result.warped and np.array_equal(result.audio, wav)


def test_sync_never_crashes_on_random_downbeats():
    rng = np.random.default_rng(7)
    rate = 8_000
    for _ in range(25):
        length = int(rng.integers(1, 4 * rate))
        channels = int(rng.integers(1, 3))
        audio = rng.uniform(-1, 1, (channels, length)).astype(np.float32)
        audio[:, rng.integers(0, length)] = np.nan
        gen = np.unique(rng.uniform(0, 5, rng.integers(0, 8)))
        ref = np.unique(rng.uniform(0, 5, rng.integers(0, 8)))
        out_length = int(rng.integers(1, 5 * rate))
        result = beat_sync(audio, rate, gen, ref, out_length, threshold=float(rng.uniform(0, 2)))
        assert result.audio.shape == (channels, out_length)
        assert result.audio.dtype == np.float32 and np.all(np.isfinite(result.audio))
        if result.warped:
            assert np.all(np.diff(result.anchors, axis=1) > 0)
            assert result.anchors[1, -1] == out_length - 1


@pytest.mark.parametrize("kwargs,match", [
    ({"generated": np.zeros(100, np.float32)}, "channels, samples"),
    ({"generated": np.zeros((2, 100), np.int16)}, "floating"),
    ({"sample_rate": 0}, "sample_rate"),
    ({"out_length": 0}, "out_length"),
    ({"reference_downbeats": np.array([1.0, np.inf])}, "infinite"),
])
def test_sync_rejects_bad_input(kwargs, match):
    args = {"generated": np.zeros((2, 100), np.float32), "sample_rate": SR,
            "generated_downbeats": np.array([0.001]), "reference_downbeats": np.array([0.001]),
            "out_length": 100} | kwargs
    with pytest.raises(ValueError, match=match):
        beat_sync(**args, threshold=0.5)


@pytest.mark.parametrize("delay", [0.3, -0.3])
def test_silent_head_does_not_pull_the_music_early(delay):
    # A take that starts with 0.5 s of silence, moved later (silence prepended) or earlier. WSOLA
    # run over silence locks onto its largest lag and would shift the music ~512 samples early.
    rate = 32_000
    rng = np.random.default_rng(0)
    music = np.zeros((1, 6 * rate), np.float32)
    music[0, rate // 2:] = 0.3 * rng.standard_normal(music.shape[1] - rate // 2)
    downbeats = np.array([0.5, 2.5, 4.5])
    result = beat_sync(music, rate, downbeats, downbeats + delay, 6 * rate, threshold=0.5)
    assert result.warped and result.audio.shape == (1, 6 * rate)
    shift = int(round(delay * rate))
    got, expected = result.audio[0], np.roll(music[0], shift)
    lags = range(-600, 601)
    window = slice(rate, 5 * rate)
    corr = [float(np.dot(np.roll(got, -lag)[window], expected[window])) for lag in lags]
    assert abs(lags[int(np.argmax(corr))]) <= 2
    if delay > 0:
        assert not np.any(result.audio[0, :shift + rate // 2 - 64])


def _clicks(times: np.ndarray, seconds: float, rate: int = SR) -> np.ndarray:
    """Mono 5 ms noise bursts at ``times``, on a quiet noise floor (so nothing is silent)."""
    rng = np.random.default_rng(3)
    audio = 0.01 * rng.standard_normal((1, int(seconds * rate))).astype(np.float32)
    burst = rng.uniform(-0.8, 0.8, int(0.005 * rate)).astype(np.float32)
    for t in times:
        start = int(round(t * rate))
        audio[0, start:start + burst.size] += burst[:audio.shape[1] - start]
    return audio


# WSOLA itself moves clicks by up to its 512-sample similarity search (16 ms at 32 kHz), even
# through an identity map; the warp map is checked to the sample, the audio to this.
WSOLA_SLACK = 0.02


def _onsets(audio: np.ndarray, near: np.ndarray, rate: int = SR) -> np.ndarray:
    """Time of the loudest sample within 0.1 s of each of ``near``."""
    found = []
    for t in near:
        a, b = int((t - 0.1) * rate), int((t + 0.1) * rate)
        found.append((a + int(np.abs(audio[0, a:b]).argmax())) / rate)
    return np.array(found)


def _assert_every_beat_lands(result, take_beats: np.ndarray, song_beats: np.ndarray) -> None:
    """Every take beat is mapped onto its song beat by the anchors, and heard there."""
    np.testing.assert_allclose(np.interp(take_beats * SR, *result.anchors) / SR, song_beats,
                               atol=1.5 / SR)
    np.testing.assert_allclose(_onsets(result.audio, song_beats[:-1]), song_beats[:-1],
                               atol=WSOLA_SLACK)


def test_bar_phase_on_beat_3_is_moved_onto_the_songs_downbeats():
    song_beats = 0.5 + 0.5 * np.arange(20)  # 120 BPM, 4/4, downbeats every 4th beat
    song_downbeats = song_beats[::4]
    take_beats = song_beats + 0.12  # the take plays 0.12 s late ...
    take_downbeats = take_beats[2::4]  # ... and its tracker put "1" on "3"
    audio = _clicks(take_beats, 11.0)
    out_length = 11 * SR
    threshold = default_threshold(120)
    blind = beat_sync(audio, SR, take_downbeats, song_downbeats, out_length, threshold=threshold)
    assert not blind.warped  # downbeat pairing alone: every pair is a beat too far
    result = beat_sync(audio, SR, take_downbeats, song_downbeats, out_length, threshold=threshold,
                       generated_beats=take_beats, reference_beats=song_beats)
    assert result.warped and result.n_matched == 5
    assert "bar phase moved by -2 beats" in result.reason
    _assert_every_beat_lands(result, take_beats, song_beats)


def test_drift_inside_a_bar_is_corrected():
    song_beats = 0.5 + 0.5 * np.arange(20)
    song_downbeats = song_beats[::4]
    # Downbeats on time, the beats in between rushed and dragged by up to 60 ms.
    wobble = np.tile([0.0, 0.04, 0.06, -0.05], 5)
    take_beats = song_beats + wobble
    audio = _clicks(take_beats, 11.0)
    out_length = 11 * SR
    bars_only = beat_sync(audio, SR, take_beats[::4], song_downbeats, out_length, threshold=0.55)
    landed = np.interp(take_beats * SR, *bars_only.anchors) / SR
    assert np.abs(landed - song_beats).max() > 0.05  # downbeat anchors leave the wobble in
    result = beat_sync(audio, SR, take_beats[::4], song_downbeats, out_length, threshold=0.55,
                       generated_beats=take_beats, reference_beats=song_beats)
    assert result.warped and result.n_matched == 5 and "20 anchors with beats" in result.reason
    assert np.all(np.diff(result.anchors, axis=1) > 0)
    _assert_every_beat_lands(result, take_beats, song_beats)


def test_double_tempo_offbeats_stay_unpaired():
    song_beats = 0.5 + 0.5 * np.arange(16)
    take_beats = 0.6 + 0.25 * np.arange(32)  # read at double tempo: an extra beat between each
    audio = _clicks(take_beats, 9.0)
    result = beat_sync(audio, SR, take_beats[::8], song_beats[::4], 9 * SR, threshold=0.55,
                       generated_beats=take_beats, reference_beats=song_beats)
    sources, targets = result.anchors[:, 1:-1] / SR  # without the speed-1 head and tail
    np.testing.assert_allclose(targets, song_beats[:targets.size], atol=1.5 / SR)
    np.testing.assert_allclose(sources, take_beats[::2][:targets.size], atol=1.5 / SR)


def test_sync_with_beats_never_crashes_and_keeps_its_guarantees():
    rng = np.random.default_rng(11)
    rate = 8_000
    for _ in range(25):
        length = int(rng.integers(1, 4 * rate))
        channels = int(rng.integers(1, 3))
        audio = rng.uniform(-1, 1, (channels, length)).astype(np.float32)
        beats = [np.unique(rng.uniform(0, 5, rng.integers(0, 16))) for _ in range(2)]
        downbeats = [b[rng.random(b.size) < 0.3] for b in beats]
        out_length = int(rng.integers(1, 5 * rate))
        result = beat_sync(audio, rate, downbeats[0], downbeats[1], out_length,
                           threshold=float(rng.uniform(0, 2)), generated_beats=beats[0],
                           reference_beats=beats[1])
        assert result.audio.shape == (channels, out_length)
        assert result.audio.dtype == np.float32 and np.all(np.isfinite(result.audio))
        if result.warped:
            assert np.all(np.diff(result.anchors, axis=1) > 0)
            assert result.anchors[1, -1] == out_length - 1
        else:
            assert result.anchors.shape == (2, 0) and result.n_matched == 0


def test_sync_wants_beats_on_both_sides():
    with pytest.raises(ValueError, match="give both generated_beats and reference_beats"):
        beat_sync(np.zeros((1, 100), np.float32), SR, np.array([0.001]), np.array([0.001]), 100,
                  threshold=0.5, generated_beats=np.array([0.001]))


def test_bar_phase_is_told_by_the_harmony_when_timing_cannot():
    # Each bar of the song holds its own chord; the take plays the same music 0.26 s early (just
    # over half a beat) and its tracker put "1" on "3". By timing alone a take 0.24 s late with
    # "1" on "2" explains the downbeats as well (better, even); only the harmony tells them apart.
    rate = 16_000
    song_beats = 0.5 + 0.5 * np.arange(40)
    t = np.arange(21 * rate) / rate
    bar = np.clip(((t - 0.5) // 2.0).astype(int), 0, 9)
    pitch = np.array([0, 7, 2, 9, 4, 11, 6, 1, 8, 3])[bar]  # a new pitch class every bar
    song = (0.3 * np.sin(2 * np.pi * 220.0 * 2 ** (pitch / 12) * t))[None].astype(np.float32)
    lead = int(0.26 * rate)
    take = np.pad(song[:, lead:], ((0, 0), (0, lead)))
    take_beats = song_beats - 0.26
    kwargs = dict(threshold=0.55, generated_beats=take_beats, reference_beats=song_beats)
    by_timing = beat_sync(take, rate, take_beats[2::4], song_beats[::4], song.shape[1], **kwargs)
    assert "bar phase moved by -1 beats" in by_timing.reason  # the timing-only choice
    result = beat_sync(take, rate, take_beats[2::4], song_beats[::4], song.shape[1],
                       reference_audio=(song, rate), **kwargs)
    assert "bar phase moved by -2 beats" in result.reason
    np.testing.assert_allclose(np.interp(take_beats * rate, *result.anchors) / rate, song_beats,
                               atol=1.5 / rate)


def test_reference_audio_needs_the_beats():
    with pytest.raises(ValueError, match="reference_audio is used only with generated_beats"):
        beat_sync(np.zeros((1, 100), np.float32), SR, np.array([0.001]), np.array([0.001]), 100,
                  threshold=0.5, reference_audio=(np.zeros((1, 100), np.float32), SR))


class _Heard:
    """An agreement whose score is set per candidate lag (take time minus song time)."""

    def __init__(self, by_lag: dict[float, float]) -> None:
        self.by_lag = by_lag

    def score(self, take_times: np.ndarray, song_times: np.ndarray) -> float:
        lag = round(float(np.median(take_times - song_times)), 2)
        return self.by_lag.get(lag, 0.0)


@pytest.mark.parametrize("better_by,moved", [(0.03, False), (0.08, True)])
def test_a_half_beat_move_needs_the_audio_to_agree_better_by_a_margin(better_by, moved):
    from remixer.beatsync import PHASE_MARGIN, choose_bar_phase

    assert 0.03 < PHASE_MARGIN < 0.08
    song_beats = 0.5 + 0.5 * np.arange(20)
    take_beats = 0.1 + 0.5 * np.arange(21)  # on the beat, 0.1 s late: the nearest phase
    heard = _Heard({0.1: 0.5, -0.15: 0.5 + better_by})  # the midpoints, 0.15 s early
    phase = choose_bar_phase(take_beats, take_beats[1::4], song_beats, song_beats[::4],
                             default_threshold(120), 0.15, heard=heard)
    assert phase.shift == (-0.5 if moved else 0.0)
    np.testing.assert_allclose(phase.downbeats[:2],
                               [0.35, 2.35] if moved else [0.6, 2.6])


def test_a_take_without_beats_is_aligned_by_the_songs_harmony():
    from devtools.synth import demo_song, retimed

    rate = 22_050
    song = demo_song(16.0, 120.0, 4, vocals=False, sample_rate=rate, channels=1, first_downbeat=0.5)
    take = retimed(song, (118.0, 122.0), first_downbeat=0.8)  # 0.3 s late, drifting
    pads = take.stems["other"]  # one sustained chord a bar: nothing for a beat tracker
    nothing = np.zeros(0)
    kwargs = dict(threshold=default_threshold(120), generated_beats=nothing,
                  reference_beats=song.beats)
    blind = beat_sync(pads, rate, nothing, song.downbeats, pads.shape[1], **kwargs)
    assert not blind.warped and blind.reason == ("not warped: no downbeats detected in the "
                                                 "generated audio")
    result = beat_sync(pads, rate, nothing, song.downbeats, pads.shape[1],
                       reference_audio=(song.stems["other"], rate), **kwargs)
    assert result.warped and result.method == "audio" and result.confidence > 0.5
    assert result.reason.startswith("warped by audio")
    assert result.n_matched == song.downbeats.size
    n = min(song.downbeats.size, take.downbeats.size)
    landed = np.interp(take.downbeats[:n] * rate, *result.anchors) / rate
    inner = (song.downbeats[:n] > 2.0) & (song.downbeats[:n] < 14.0)
    assert np.abs(landed - song.downbeats[:n])[inner].max() <= 0.012


def test_a_take_beyond_the_threshold_is_left_with_the_reason():
    from devtools.synth import demo_song, retimed

    rate = 22_050
    song = demo_song(12.0, 120.0, 4, vocals=False, sample_rate=rate, channels=1, first_downbeat=0.5)
    pads = retimed(song, 120.0, first_downbeat=1.1).stems["other"]  # 0.6 s late
    nothing = np.zeros(0)
    result = beat_sync(pads, rate, nothing, song.downbeats, pads.shape[1], threshold=0.1,
                       generated_beats=nothing, reference_beats=song.beats,
                       reference_audio=(song.stems["other"], rate))
    assert not result.warped and result.method == "none"
    assert "the audio alignment is not trusted either" in result.reason
    assert "threshold" in result.reason


@pytest.mark.parametrize("off,track_score,tracker_score,overruled", [
    (0.05, 0.6, 0.55, True),  # 0.1 beat off a confident track: the track pairs the song's beats
    (0.03, 0.6, 0.55, False),  # within TRACK_TOLERANCE of it: the tracker's own beats stand
    (0.05, 0.3, 0.28, False),  # a weak track, no clearer than the tracker, overrules nothing
    (0.05, 0.3, 0.14, True),  # a weak track that agrees clearly better does
])
def test_the_lag_track_overrules_tracker_beats_only_when_convincing_and_clearly_off(
        off, track_score, tracker_score, overruled):
    from remixer.alignment import Agreement
    from remixer.beatsync import MIN_OVERRIDE_CONFIDENCE, TRACK_TOLERANCE, _Alignment, _with_audio

    assert 0.3 < MIN_OVERRIDE_CONFIDENCE < 0.6 and 0.03 < TRACK_TOLERANCE * 0.5 < 0.05
    song_beats = 0.5 + 0.5 * np.arange(30)  # 120 BPM
    lags = np.round(np.arange(-60, 61) * 0.01, 2)
    scores = np.zeros((13, lags.size))
    scores[:, np.flatnonzero(lags == 0.2)] = track_score  # the audio: the take 0.2 s late
    scores[:, np.flatnonzero(lags == round(0.2 + off, 2))] = tracker_score
    heard = Agreement(centres=np.arange(2.0, 15.0), lags=lags, scores=scores)
    pairs = np.stack([song_beats + 0.2 + off, song_beats], axis=1)
    tracked = _Alignment(pairs, song_beats[::4], "beats", None, "the tracker's")
    found = _with_audio(tracked, heard, song_beats, song_beats[::4], 20.0)
    expected = song_beats + (0.2 if overruled else 0.2 + off)
    np.testing.assert_allclose(found.pairs[:, 0], expected, atol=1e-9)
    assert found.method == ("audio" if overruled else "beats")
