"""btc.labels: vocabularies, label ⇄ chroma, user spellings and the chord-text parser."""
from __future__ import annotations

import numpy as np
import pytest

from btc.labels import (
    VOCAB_25, VOCAB_170, ChordSegment, ChordSyntaxError, chroma_to_label, label_to_chroma,
    normalize_label, parse_chord_text,
)

# Semitones above the root, written out from checkpoint-formats.md §1.8.
SEMITONES = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8),
    "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10), "7": (0, 4, 7, 10), "dim7": (0, 3, 6, 9),
    "hdim7": (0, 3, 6, 10), "minmaj7": (0, 3, 7, 11), "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9),
    "sus2": (0, 2, 7), "sus4": (0, 5, 7), "9": (0, 2, 4, 7, 10), "maj9": (0, 2, 4, 7, 11),
    "min9": (0, 2, 3, 7, 10), "11": (0, 2, 4, 5, 7, 10), "min11": (0, 2, 3, 5, 7, 10),
    "13": (0, 4, 7, 9, 10), "maj13": (0, 4, 7, 9, 11), "min13": (0, 3, 7, 9, 10),
    "6": (0, 9), "5": (0, 7), "4": (0, 5), "1": (0,),
}
NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def expected(root: int, semitones: tuple[int, ...]) -> np.ndarray:
    chroma = np.zeros(12, dtype=np.float32)
    chroma[[(root + s) % 12 for s in semitones]] = 1
    return chroma


def test_vocabularies_match_the_published_index_tables():
    assert len(VOCAB_25) == 25 and len(VOCAB_170) == 170
    assert VOCAB_25[:4] == ("C", "C:min", "C#", "C#:min")
    assert (VOCAB_25[5], VOCAB_25[19], VOCAB_25[20], VOCAB_25[23], VOCAB_25[24]) == (
        "D:min", "A:min", "A#", "B:min", "N")
    assert (VOCAB_170[0], VOCAB_170[1], VOCAB_170[2], VOCAB_170[13]) == ("C:min", "C", "C:dim", "C:sus4")
    assert (VOCAB_170[14], VOCAB_170[15], VOCAB_170[167]) == ("C#:min", "C#", "B:sus4")
    assert VOCAB_170[168:] == ("X", "N")
    assert VOCAB_170[9 * 14 + 11] == "A:hdim7"
    assert len(set(VOCAB_170)) == 170


@pytest.mark.parametrize("vocab", [VOCAB_25, VOCAB_170], ids=["25", "170"])
def test_every_vocabulary_label_has_the_expected_chroma(vocab):
    for label in vocab:
        chroma = label_to_chroma(label)
        assert chroma.dtype == np.float32 and chroma.shape == (12,)
        if label == "N":
            np.testing.assert_array_equal(chroma, np.zeros(12))
        elif label == "X":
            np.testing.assert_array_equal(chroma, -np.ones(12))
        else:
            root, _, quality = label.partition(":")
            np.testing.assert_array_equal(chroma, expected(NOTES.index(root), SEMITONES[quality or "maj"]),
                                          err_msg=label)


def test_chroma_back_to_label_in_25_classes_is_exact():
    assert [chroma_to_label(label_to_chroma(label), VOCAB_25) for label in VOCAB_25] == list(VOCAB_25)


def test_chroma_back_to_label_in_170_classes_up_to_identical_pitch_sets():
    back = [chroma_to_label(label_to_chroma(label), VOCAB_170) for label in VOCAB_170]
    for label, found in zip(VOCAB_170, back):
        np.testing.assert_array_equal(label_to_chroma(found), label_to_chroma(label), err_msg=label)
    # Same pitch classes: maj6 = min7 of its sixth, min6 = hdim7 of its sixth, sus2 = sus4 of the
    # fifth, dim7 repeats every 3 semitones, aug every 4. 170 - 12 - 12 - 12 - 9 - 8 = 117 sets.
    assert len(set(back)) == 117
    assert back[VOCAB_170.index("A:min7")] == "C:maj6"
    assert back[VOCAB_170.index("A:hdim7")] == "C:min6"
    assert back[VOCAB_170.index("G:sus4")] == "C:sus2"
    assert back[VOCAB_170.index("A:dim7")] == "C:dim7"
    assert back[VOCAB_170.index("G#:aug")] == "C:aug"
    assert back[VOCAB_170.index("F#:min")] == "F#:min"


def test_chroma_to_label_rejects_unknown_chroma_and_bad_shape():
    with pytest.raises(ValueError, match="no label"):
        chroma_to_label(label_to_chroma("C:7"), VOCAB_25)
    with pytest.raises(ValueError, match=r"shape \(12,\)"):
        chroma_to_label(np.zeros(11), VOCAB_25)


@pytest.mark.parametrize("quality", sorted(SEMITONES))
def test_every_shorthand_quality(quality):
    np.testing.assert_array_equal(label_to_chroma(f"D:{quality}"), expected(2, SEMITONES[quality]))


@pytest.mark.parametrize("label, root, semitones", [
    ("C:(1,b3,5)", 0, (0, 3, 7)),
    ("C:(b3,5)", 0, (0, 3, 7)),           # the root bit is always set (no bass = bass on the root)
    ("C:maj(9)", 0, (0, 2, 4, 7)),
    ("C:min7(*5)", 0, (0, 3, 10)),
    ("C:(1, 3, #5)", 0, (0, 4, 8)),
    ("C/3", 0, (0, 4, 7)),
    ("C/b7", 0, (0, 4, 7, 10)),
    ("A:min/b7", 9, (0, 3, 7, 10)),
    ("G/B", 7, (0, 4, 7)),
    ("D/F#", 2, (0, 4, 7)),
    ("C/F", 0, (0, 4, 5, 7)),
    ("Bb:maj7", 10, (0, 4, 7, 11)),
    ("Cb", 11, (0, 4, 7)),
    ("E#:min", 5, (0, 3, 7)),
    ("Dbb", 0, (0, 4, 7)),
    ("C:9", 0, (0, 2, 4, 7, 10)),
])
def test_intervals_bass_and_accidentals(label, root, semitones):
    np.testing.assert_array_equal(label_to_chroma(label), expected(root, semitones))


@pytest.mark.parametrize("token, canonical", [
    ("C", "C"), ("C:maj", "C"), ("Am", "A:min"), ("A:min", "A:min"), ("Amin", "A:min"),
    ("Cmaj7", "C:maj7"), ("CM7", "C:maj7"), ("C:maj7", "C:maj7"), ("Bb", "Bb"), ("F#m7", "F#:min7"),
    ("Dm7b5", "D:hdim7"), ("Dø7", "D:hdim7"), ("Cdim", "C:dim"), ("Co7", "C:dim7"), ("Caug", "C:aug"),
    ("C+", "C:aug"), ("Csus4", "C:sus4"), ("Csus", "C:sus4"), ("Csus2", "C:sus2"), ("C7", "C:7"),
    ("C6", "C:maj6"), ("C:6", "C:6"), ("Cm6", "C:min6"), ("CmM7", "C:minmaj7"), ("C9", "C:9"),
    ("Cm9", "C:min9"), ("C5", "C:5"), ("Cadd9", "C:maj(9)"), ("G/B", "G/3"), ("Am/G", "A:min/b7"),
    ("C/E", "C/3"), ("C/C", "C"), ("C/b7", "C/b7"), ("B♭m", "Bb:min"), ("F♯", "F#"),
    ("N", "N"), ("N.C.", "N"), ("NC", "N"), ("X", "X"), (" Am ", "A:min"), ("C:(1, b3, 5)", "C:(1,b3,5)"),
])
def test_normalize_label(token, canonical):
    assert normalize_label(token) == canonical
    assert normalize_label(canonical) == canonical


def test_user_spelling_and_harte_label_give_the_same_chroma():
    for user, harte in [("F#m7", "F#:min7"), ("Dm7b5", "D:hdim7"), ("G/B", "G/3"), ("Bbmaj7", "A#:maj7")]:
        np.testing.assert_array_equal(label_to_chroma(user), label_to_chroma(harte))


@pytest.mark.parametrize("token, needle", [
    ("c", "lowercase root 'c'"), ("am", "lowercase root 'a'"), ("", "empty chord"),
    ("H", "root note A-G"), ("C:foo", "unknown quality 'foo'"), ("Cfoo", "unknown chord quality 'foo'"),
    ("C:", "nothing after ':'"), ("C/", "nothing after '/'"), ("C/x", "'x' is not an interval"),
    ("C:(1,b3", "not like (1,b3,5)"), ("C:(1,15)", "'15' is not an interval"), ("C:()", "not like"),
    ("C:maj(b)", "'b' is not an interval"),
])
def test_malformed_labels_are_rejected_with_the_token_named(token, needle):
    with pytest.raises(ChordSyntaxError) as caught:
        normalize_label(token)
    assert needle in str(caught.value) and repr(token) in str(caught.value)
    assert isinstance(caught.value, ValueError) and caught.value.token == token
    with pytest.raises(ChordSyntaxError):
        label_to_chroma(token)


def test_parse_chord_text_accepts_the_documented_syntax():
    assert parse_chord_text("C G,G:7 E:min,E:min7 A:min") == [
        ["C"], ["G", "G:7"], ["E:min", "E:min7"], ["A:min"]]
    assert parse_chord_text("  Am  F\tC\nG/B  ") == [["A:min"], ["F"], ["C"], ["G/3"]]
    assert parse_chord_text("C:(1,b3,5),G Dm7b5") == [["C:(1,b3,5)", "G"], ["D:hdim7"]]
    assert parse_chord_text("N C") == [["N"], ["C"]]


@pytest.mark.parametrize("text, position, needles", [
    ("", 0, ["chord text is empty", "separates bars by spaces"]),
    ("   ", 0, ["chord text is empty"]),
    ("C,C:7 G, E:min A:min", 8, ["empty chord in bar 2 'G,'", "character 8", "chord 2", "commas"]),
    ("C,,G", 2, ["empty chord in bar 1 'C,,G'", "chord 2"]),
    (",C", 0, ["empty chord in bar 1", "chord 1"]),
    ("C Am e", 5, ["bar 3 'e'", "character 5", "lowercase root 'e'"]),
    ("C G:foo", 2, ["bar 2 'G:foo'", "unknown quality 'foo'", "e.g. \"C G,G:7"]),
    ("C F,Hm", 4, ["bar 2 'F,Hm'", "character 4", "chord 2", "bad chord 'Hm'"]),
])
def test_parse_chord_text_errors_quote_token_and_position(text, position, needles):
    with pytest.raises(ChordSyntaxError) as caught:
        parse_chord_text(text)
    for needle in needles:
        assert needle in str(caught.value)
    assert caught.value.position == position


def test_chord_segment_is_a_frozen_record():
    segment = ChordSegment(0.0, 1.5, "C")
    assert (segment.start, segment.end, segment.label) == (0.0, 1.5, "C")
    with pytest.raises(AttributeError):
        segment.label = "D"  # type: ignore[misc]
