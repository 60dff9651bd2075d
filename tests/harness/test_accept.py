"""The acceptance run refuses, in one line and with status 1, when the real weights are absent."""
from __future__ import annotations

import numpy as np

from devtools.accept import EXPECTED_KEYS, main


def test_missing_weights_are_one_clear_line_and_a_failure(tmp_path, capsys):
    assert main(["--weights-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith(f"accept: real weights missing in {tmp_path}: 18 of 18 files "
                          f"(musicgen-stereo-chord, encodec-32khz-config, encodec-32khz-model, ...)")
    assert out.rstrip().endswith("run `python -m remixer.weights fetch remix-default` first")
    assert not any(tmp_path.iterdir())  # nothing written, nothing downloaded


def test_published_key_counts():
    assert EXPECTED_KEYS == {"chord": 619, "chord-large": 619, "stereo-chord": 627, "stereo-chord-large": 627}


def test_t5_check_passes_when_both_tokenizers_agree_and_names_each_difference(tmp_path):
    """The check `make accept` runs on t5-base: the product's tokenizer (tokenizer.json, through
    load_text_encoder) against spiece.model read by sentencepiece (the published slow tokenizer).
    The tiny files differ only where their tokenizer.json, written without sentencepiece's NFKC
    map, reads full-width letters; a sentencepiece model of another vocabulary differs on all."""
    import io

    import sentencepiece as spm

    from devtools.accept import T5_DESCRIPTIONS, compare_t5_tokenizers
    from devtools.tiny import musicgen as fx
    from remixer.musicgen.loaders import load_text_encoder

    directory = fx.t5_dir(tmp_path / "t5-base")
    tokenizer = load_text_encoder(directory).tokenizer
    [(text, ours, published)] = compare_t5_tokenizers(tokenizer, directory / "spiece.model")
    assert text == "ＦＵＬＬ　ｗｉｄｔｈ ｔｅｘｔ" and ours != published
    assert compare_t5_tokenizers(tokenizer, directory / "spiece.model", ["Café crème, bpm : 90"]) == []
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["bossa nova with a bpm of 90, café"] * 20),
                                   model_writer=model, vocab_size=30, pad_id=0, eos_id=1, unk_id=2,
                                   bos_id=-1, hard_vocab_limit=False, minloglevel=2)
    (tmp_path / "other.model").write_bytes(model.getvalue())
    different = compare_t5_tokenizers(tokenizer, tmp_path / "other.model")
    assert {text for text, _, _ in different} >= {"bossa nova", "bossa nova, bpm : 90"}
    text, ours, published = next(d for d in different if d[0] == "bossa nova")
    assert ours == tokenizer("bossa nova")["input_ids"] and ours != published and published[-1] == 1
    assert len(T5_DESCRIPTIONS) >= 12 and any(ord(c) > 0xFFFF for t in T5_DESCRIPTIONS for c in t)


def test_silence_report_counts_what_the_network_itself_says():
    import torch

    from btc.model import BTC, BTCConfig
    from btc.recognizer import ChordRecognizer
    from devtools.accept import silence_labels

    torch.manual_seed(0)
    recognizer = ChordRecognizer(BTC(BTCConfig(hidden_size=32, num_layers=1, total_key_depth=32,
                                               total_value_depth=32, filter_size=32, num_chords=25)), -5.0, 2.0)
    heard = silence_labels(recognizer)
    assert sum(heard.values()) == 324  # 30 s: three 10 s chunks of 108 frames
    # A random network names chords on silence; the product's reading says N all the same.
    assert set(heard) != {"N"} and set(recognizer.read(np.zeros(30 * 22050, np.float32), 22050)) == {"N"}
