"""MusicGen Chord and Melody on stock audiocraft 1.3.0: what the published fork added, rebuilt.

MusicGen Chord is a melody-architecture LM whose 12-d chroma prefix holds multi-hot *chord*
chroma. The fork that trained it registered a ``chroma_chord`` conditioner that stock 1.3.0 does
not know, ran demucs and BTC inside it, and loaded T5/EnCodec from the Hugging Face hub. Here,
as audiocraft splits its own code:

* :mod:`remixer.musicgen.conditioners`: the chord conditioner (chroma in, not audio), the melody
  conditioner with an injected demucs, T5 over an already loaded encoder;
* :mod:`remixer.musicgen.builders`: a model from a training config (the config edits for
  inference, the LM with our conditioners, the codec check), with or without a state dict;
* :mod:`remixer.musicgen.loaders`: models from local files only (chord ``.th``, melody
  ``state_dict.bin``, T5, EnCodec, MBD, the BTC copy inside a chord checkpoint).

:mod:`remixer.generation` samples with what these build.
"""
