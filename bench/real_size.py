"""Random models with the PUBLISHED shapes, built offline through the product's own loaders.

Decoding speed depends on the shapes of the weights, not on their values, so random models of
the real size measure it exactly, on a machine that cannot download the weights:

* **MusicGen Chord LMs**: the fork's ``chord2music`` training config
  (:func:`devtools.tiny.musicgen.lm_config`) at the sizes of ``docs/checkpoint-formats.md`` §2.4/§2.6
  (medium: dim 1536, 24 heads; large: dim 2048, 32 heads; 48 layers, card 2048, 30 s window;
  mono ``n_q=4``, stereo ``n_q=8``), built by
  :func:`remixer.musicgen.builders.build_chord_model`, the checkpoint loader minus its state dict,
  so in the dtype the product picks for the device (float16 on a GPU, float32 on the CPU).
* **T5-base, EnCodec 32 kHz, htdemucs, BTC (both vocabularies), All-In-One's 8 folds**: written
  at their real size into a temporary weights cache in the published file formats and loaded by
  :meth:`remixer.pipeline.Models.load`, exactly as the real files are.

T5's tokenizer is a STAND-IN (a sentencepiece model trained on a few sentences): no T5 vocabulary
ships in any installed package, and tokenizing a prompt is not on the decoding path. The encoder
itself has t5-base's shapes, its 32,128-entry embedding included.

``tiny=True`` scales every shape down (the test suite's models) so the same code runs in seconds.
"""
from __future__ import annotations

from pathlib import Path

from demucs.htdemucs import HTDemucs
from omegaconf import DictConfig
from transformers import EncodecConfig, T5Config

from devtools.tiny import btc, demucs, musicgen
from devtools.tiny.cache import build_tiny_weights
from remixer.requests import CHORD_VERSIONS
from remixer.weights import Manifest, WeightsStore

WINDOW = 30.0
LAYERS = 48
CARD = 2048
# Width and heads of the medium and large chord LMs (checkpoint-formats.md §2.4).
LM_SIZES = {"chord": (1536, 24), "chord-large": (2048, 32),
            "stereo-chord": (1536, 24), "stereo-chord-large": (2048, 32)}
# google-t5/t5-base's config.json.
T5_BASE = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
                   relative_attention_num_buckets=32, dropout_rate=0.1, layer_norm_epsilon=1e-6,
                   feed_forward_proj="relu", decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
# facebook/encodec_32khz: transformers' defaults with its conversion script's overrides.
ENCODEC_32KHZ = EncodecConfig(sampling_rate=32000, upsampling_ratios=[8, 5, 4, 4],
                              target_bandwidths=[2.2], num_filters=64, codebook_size=CARD,
                              use_causal_conv=False, normalize=False, use_conv_shortcut=False)
# htdemucs (955717e8): HTDemucs' defaults, trained on 7.8 s segments.
HTDEMUCS_SEGMENT = 7.8


def lm_config(version: str, *, tiny: bool = False) -> DictConfig:
    """The training config of a chord ``version`` at its published size (or the tests' tiny one)."""
    if version not in CHORD_VERSIONS:
        raise ValueError(f"unknown chord version {version!r}; choose one of {', '.join(CHORD_VERSIONS)}")
    stereo = version.startswith("stereo")
    if tiny:
        return musicgen.lm_config(stereo=stereo, window=WINDOW)
    dim, heads = LM_SIZES[version]
    return musicgen.lm_config(stereo=stereo, dim=dim, heads=heads, layers=LAYERS, card=CARD,
                              window=WINDOW)


def write_weights(root: Path, *, tiny: bool = False) -> WeightsStore:
    """Write every model but the LMs under ``root`` in the published layouts; return its store.

    BTC and All-In-One have their real size in both cases; T5, EnCodec and htdemucs are
    real-size unless ``tiny``. The cache holds a tiny chord LM file for every version: its LM is
    never loaded (the LMs are built from their configs), but the chord recogniser of a version
    reads the 170-class BTC copy inside that version's file, as with the published files.
    """
    manifest = build_tiny_weights(root, with_allinone=True)
    store = WeightsStore(root, offline=True, manifest=Manifest.load(manifest))
    for version in CHORD_VERSIONS:
        target = store.target(f"musicgen-{version}")
        if not target.exists():
            musicgen.chord_checkpoint(target, stereo=version.startswith("stereo"),
                                      btc_state=btc.published_state_dict(170))
    if not tiny:
        musicgen.t5_dir(store.target("t5-base-model").parent, config=T5_BASE)
        musicgen.encodec_dir(store.target("encodec-32khz-model").parent, config=ENCODEC_32KHZ)
        demucs.save_legacy(HTDemucs(demucs.SOURCES, segment=HTDEMUCS_SEGMENT), store.target("htdemucs"))
    return store


def describe(cfg: DictConfig) -> str:
    """``dim 1536, 48 layers, 24 heads, n_q 4, card 2048``."""
    lm = cfg.transformer_lm
    return f"dim {lm.dim}, {lm.num_layers} layers, {lm.num_heads} heads, n_q {lm.n_q}, card {lm.card}"

