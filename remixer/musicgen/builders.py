"""A MusicGen model from its training config: audiocraft's builders with our conditioners.

:func:`assemble` edits nothing it is given: :func:`inference_config` copies the training config
and sets it up for inference (device, dtype, training-only keys removed), the LM is built from
that copy with :mod:`remixer.musicgen.conditioners` in place of the hub-loading ones, a state
dict (when given) must fit it key for key, and the codec must match the LM's streams and codes.
:func:`build_chord_model` is that without a state dict; :mod:`remixer.musicgen.loaders` calls
:func:`assemble` with the files' state dicts.
"""
from __future__ import annotations

import copy
import typing as tp
from pathlib import Path

import torch
from audiocraft.models import builders
from audiocraft.models.encodec import CompressionModel
from audiocraft.models.genmodel import BaseGenModel
from audiocraft.models.lm import LMModel
from audiocraft.models.musicgen import MusicGen
from audiocraft.modules.conditioners import BaseConditioner, ConditioningProvider
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from remixer.musicgen.conditioners import (CHROMA_ATTRIBUTE, ChordConditioner, LocalT5Conditioner,
                                           MelodyConditioner, TextEncoder)

__all__ = ["MusicGenModel", "build_chord_model", "assemble", "chord_config", "inference_config"]

# Training-only config keys that ConditioningProvider / ChromaStemConditioner would choke on or


# act on (a cache directory on the training cluster).
_TRAINING_KEYS = ("conditioners.self_wav.chroma_chord.cache_path",
                  "conditioners.self_wav.chroma_stem.cache_path",
                  "conditioners.args.merge_text_conditions_p",
                  "conditioners.args.drop_desc_p")


class MusicGenModel(MusicGen):
    """audiocraft's ``MusicGen`` for any window length.

    ``MusicGen.__init__`` checks its default 18 s extension stride against ``max_duration`` and
    so rejects LMs trained on windows of 18 s or less; this sets a stride of 0.6 windows instead
    (18 s for the 30 s models). Stereo codec wrapping and ``max_duration`` still come from
    ``lm.cfg`` through ``BaseGenModel``.
    """

    def __init__(self, name: str, compression_model: CompressionModel, lm: LMModel) -> None:
        BaseGenModel.__init__(self, name, compression_model, lm)
        self.set_generation_params(duration=self.max_duration, extend_stride=0.6 * self.max_duration)


def build_chord_model(config: tp.Union[DictConfig, dict], *, name: str,
                      device: tp.Union[str, torch.device], text_encoder: TextEncoder,
                      compression_model: CompressionModel,
                      dtype: tp.Optional[torch.dtype] = None) -> MusicGenModel:
    """A MusicGen Chord model from a training config alone, with audiocraft's initial weights.

    :func:`~remixer.musicgen.loaders.load_chord_model` without the state dict: the same config
    edits, builder, codec check and dtype, so a model built from a published config has the
    published shapes and runs exactly as the loaded one does. Decoding speed depends on the
    shapes only, which is what ``bench/gpu_smoke.py --random-real-size`` measures with it.

    Parameters
    ----------
    config : DictConfig or dict
        A chord LM's ``xp.cfg`` (``conditioners.self_wav.model: chroma_chord``).
    name : str
        The model's name (e.g. ``musicgen-stereo-chord``), used in errors.
    device, text_encoder, compression_model, dtype
        As for :func:`~remixer.musicgen.loaders.load_chord_model` (already loaded encoder and
        codec only).
    """
    source = Path(name)
    cfg = chord_config(config, device, dtype, source=source)
    return assemble(name, cfg, None, device, text_encoder, compression_model, stem_model=None,
                    source=source)


def assemble(name: str, cfg: DictConfig, state: tp.Optional[tp.Mapping[str, torch.Tensor]],
             device: tp.Union[str, torch.device], text_encoder: TextEncoder,
             compression_model: CompressionModel, *, stem_model: tp.Optional[nn.Module],
             source: Path) -> MusicGenModel:
    """The model of an inference ``cfg`` with ``state`` (None keeps the builder's initial weights).

    ``source`` names the config's file (or the model) in errors.
    """
    lm = _build_lm(cfg, text_encoder, stem_model)
    if state is not None:
        _load_state(lm, state, source)
    lm.eval()
    lm.cfg = cfg
    _check_codec(compression_model, cfg, source)
    return MusicGenModel(name, compression_model.to(device).eval(), lm)


def _load_state(lm: LMModel, state: tp.Mapping[str, torch.Tensor], source: Path) -> None:
    missing, unexpected = _key_mismatch(lm, state)
    if missing or unexpected:
        raise ValueError(f"{source} does not match the model its config describes: "
                         f"missing keys {_few(missing)}; unexpected keys {_few(unexpected)}")
    try:
        lm.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{source}: weights do not fit the configured model: {error}") from error


def chord_config(raw: tp.Any, device: tp.Union[str, torch.device], dtype: tp.Optional[torch.dtype],
                 *, source: Path) -> DictConfig:
    """The inference config of a chord LM; refuses any other conditioner kind."""
    cfg = inference_config(raw, device, dtype, source=source)
    kind = cfg.conditioners.get(CHROMA_ATTRIBUTE, {}).get("model")
    if kind != "chroma_chord":
        raise ValueError(f"{source} is not a chord model: conditioners.self_wav.model is {kind!r}")
    return cfg


def inference_config(raw: tp.Any, device: tp.Union[str, torch.device], dtype: tp.Optional[torch.dtype],
                     *, source: Path) -> DictConfig:
    """A copy of the training config set for inference; the LM is built from THIS copy."""
    if not isinstance(raw, (str, dict, DictConfig)):
        raise ValueError(f"{source}: 'xp.cfg' is a {type(raw).__name__}, not a config")
    cfg = OmegaConf.create(raw)  # a copy: the caller's object is never edited
    device = torch.device(device)
    if dtype is None:
        dtype = torch.float32 if device.type == "cpu" else torch.float16
    with open_dict(cfg):
        cfg.device = str(device)
        cfg.dtype = str(dtype).removeprefix("torch.")
    for key in _TRAINING_KEYS:
        *parents, leaf = key.split(".")
        node = OmegaConf.select(cfg, ".".join(parents))
        if isinstance(node, DictConfig) and leaf in node:
            with open_dict(node):
                del node[leaf]
    return cfg


def _build_lm(cfg: DictConfig, text_encoder: TextEncoder, stem_model: tp.Optional[nn.Module]) -> LMModel:
    """audiocraft's ``get_lm_model`` with our conditioners in place of the hub-loading ones."""
    shell = copy.deepcopy(cfg)
    with open_dict(shell):
        shell.conditioners = None
    lm = builders.get_lm_model(shell)
    conditioners: dict[str, BaseConditioner] = {}
    for attribute, spec in cfg.conditioners.items():
        if attribute == "args":
            continue
        kind, args = spec.model, OmegaConf.to_container(spec.get(spec.model) or {}, resolve=True)
        if kind == "t5":
            conditioners[attribute] = LocalT5Conditioner(text_encoder, cfg.transformer_lm.dim, cfg.device,
                                                          word_dropout=args.get("word_dropout", 0.0))
        elif kind == "chroma_chord":
            conditioners[attribute] = ChordConditioner(
                cfg.transformer_lm.dim, duration=cfg.dataset.segment_duration, device=cfg.device,
                sample_rate=args["sample_rate"], n_chroma=args["n_chroma"], radix2_exp=args["radix2_exp"])
        elif kind == "chroma_stem":
            if stem_model is None:
                raise ValueError("this melody model needs a demucs model (stem_model)")
            kept = {k: v for k, v in args.items() if k in ("argmax", "nfft", "winlen", "winhop", "norm")}
            conditioners[attribute] = MelodyConditioner(
                cfg.transformer_lm.dim, duration=cfg.dataset.segment_duration, stem_model=stem_model,
                device=cfg.device, sample_rate=args["sample_rate"], n_chroma=args["n_chroma"],
                radix2_exp=args["radix2_exp"], **kept)
        else:
            raise ValueError(f"unsupported conditioner {attribute!r} of type {kind!r}")
    lm.condition_provider = ConditioningProvider(conditioners, device=cfg.device).to(cfg.device)
    return lm


def _key_mismatch(lm: nn.Module, state: tp.Mapping[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    expected = set(lm.state_dict())
    return sorted(expected - set(state)), sorted(set(state) - expected)


def _check_codec(codec: CompressionModel, cfg: DictConfig, source: Path) -> None:
    n_q, card = cfg.transformer_lm.n_q, cfg.transformer_lm.card
    streams = codec.num_codebooks * (2 if cfg.get("interleave_stereo_codebooks", {}).get("use") else 1)
    if codec.cardinality != card or streams != n_q:
        raise ValueError(f"{source}: the LM models {n_q} streams of {card} codes but the codec gives "
                         f"{streams} of {codec.cardinality}: wrong EnCodec for this model")


def _few(keys: list[str], limit: int = 5) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:limit]) + (f" … ({len(keys)} in all)" if len(keys) > limit else "")
