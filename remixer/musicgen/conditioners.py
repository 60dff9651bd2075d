"""Conditioners that stock audiocraft 1.3.0 lacks or builds from the hub.

Chroma in, not audio
    :class:`ChordConditioner` receives ready chroma frames (the pipeline recognises chords once,
    :mod:`remixer.chords` puts them on the grid per window) and never separates or recognises.
    It keeps the fork's parameter names, ``output_proj`` (Linear 12→dim) and the 170-class BTC at
    ``chroma.model``, so the published LM state dict (619/627 keys) loads with ``strict=True``.

Carrying chroma through 1.3.0's condition plumbing
    A chord condition is a stock :class:`~audiocraft.modules.conditioners.WavCondition` whose
    ``wav`` *is* the chroma, flattened to one channel ``[1, 1, frames·12]``, with ``length`` the
    frame count. Stock code then handles it unchanged: ``ConditioningProvider._collate_wavs``
    averages channels (a no-op on one channel) and zero-pads to the longest item, and the
    classifier-free-guidance dropout turns it into a length-0 null. The conditioner unflattens
    and masks by length, so the null branch is *exactly* zero (the fork's masking), not
    ``output_proj``'s bias. No provider or LM subclass is needed.

Melody and text
    :class:`MelodyConditioner` is the stock melody conditioner with the caller's demucs instead
    of one fetched from the network; :class:`LocalT5Conditioner` is stock T5 conditioning over a
    :class:`TextEncoder` loaded once from local files and shared by every LM.
"""
from __future__ import annotations

import typing as tp
from dataclasses import dataclass
from pathlib import Path

import torch
from audiocraft.models.genmodel import BaseGenModel
from audiocraft.modules.chroma import ChromaExtractor
from audiocraft.modules.conditioners import (ChromaStemConditioner, ConditionType, T5Conditioner,
                                             TextConditioner, WaveformConditioner, WavCondition)
from audiocraft.utils.autocast import TorchAutocast
from torch import nn

from btc.model import BTC, BTCConfig

__all__ = ["CHROMA_ATTRIBUTE", "BTC_PREFIX", "ChordConditioner", "MelodyConditioner", "TextEncoder",
           "LocalT5Conditioner", "is_chord_model", "is_melody_model"]

CHROMA_ATTRIBUTE = "self_wav"


# Where a MusicGen Chord checkpoint keeps the 170-class BTC its conditioner ran (221 keys).
BTC_PREFIX = f"condition_provider.conditioners.{CHROMA_ATTRIBUTE}.chroma.model."


class _BTCSlot(nn.Module):
    """Holds the BTC network at ``chroma.model``, the fork's key path (its ``ChordExtractor``)."""

    def __init__(self, model: BTC) -> None:
        super().__init__()
        self.model = model


class ChordConditioner(WaveformConditioner):
    """Projects multi-hot chord chroma ``[frames, 12]`` into the LM's prefix.

    Parameters
    ----------
    output_dim : int
        LM width.
    duration : float
        The LM's window (``dataset.segment_duration``); fixes the frame count.
    sample_rate, n_chroma, radix2_exp : int
        The fork's chroma grid: an STFT hop of ``2**radix2_exp / 4`` samples at ``sample_rate``,
        so ``chroma_len = 1 + duration·sample_rate // hop`` (235 for 30 s at 32 kHz).
    device : str or torch.device
    btc_config : BTCConfig, optional
        Sizes the BTC kept for the checkpoint's keys (default: the published 170 classes); it
        never runs here.
    """

    def __init__(self, output_dim: int, *, duration: float, sample_rate: int = 32000,
                 n_chroma: int = 12, radix2_exp: int = 14, device: tp.Union[str, torch.device] = "cpu",
                 btc_config: tp.Optional[BTCConfig] = None) -> None:
        super().__init__(dim=n_chroma, output_dim=output_dim, device=device)
        self.duration = float(duration)
        self.sample_rate = int(sample_rate)
        hop = 2 ** radix2_exp // 4
        self.chroma_len = 1 + int(self.duration * self.sample_rate) // hop
        self.chroma = _BTCSlot(BTC(btc_config or BTCConfig()))

    def condition(self, chroma: tp.Optional[torch.Tensor]) -> WavCondition:
        """Wrap chroma ``[chroma_len, n_chroma]`` (or None: no chords) as a one-item WavCondition."""
        if chroma is None:
            return WavCondition(torch.zeros(1, 1, 1), torch.zeros(1, dtype=torch.long),
                                [self.sample_rate], [None], [None])
        expected = (self.chroma_len, self.dim)
        if tuple(chroma.shape) != expected:
            raise ValueError(f"chord chroma must have shape {expected} for this model's "
                             f"{self.duration:g} s window, got {tuple(chroma.shape)}")
        if not torch.isfinite(chroma).all():
            raise ValueError("chord chroma holds NaN or infinite values")
        return WavCondition(chroma.float().reshape(1, 1, -1),
                            torch.tensor([self.chroma_len]), [self.sample_rate], [None], [None])

    def forward(self, x: WavCondition) -> ConditionType:
        wav, lengths = x.wav, x.length
        batch, width = wav.shape[0], self.chroma_len * self.dim
        present = lengths > 0
        if wav.shape[-1] == width:
            chroma = wav.reshape(batch, self.chroma_len, self.dim)
        elif not present.any():
            chroma = wav.new_zeros(batch, self.chroma_len, self.dim)
        else:
            raise ValueError(f"chord condition holds {wav.shape[-1]} values, expected "
                             f"{self.chroma_len}·{self.dim}; build it with ChordConditioner.condition")
        embeds = self.output_proj(chroma.to(self.output_proj.weight))
        mask = present[:, None].expand(batch, self.chroma_len).int()
        return embeds * mask[..., None], mask


class MelodyConditioner(ChromaStemConditioner):
    """Stock melody conditioning (demucs stems → STFT chroma) with an injected demucs model.

    ``ChromaStemConditioner.__init__`` fetches htdemucs from the network, so this sets up the
    same attributes itself, taking the separator the caller already loaded (``sources`` must
    name ``vocals`` and ``other``). Behaviour at inference equals the stock model's after
    ``MusicGen.get_pretrained``: chroma matched to the window length, no masking.
    """

    def __init__(self, output_dim: int, *, duration: float, stem_model: nn.Module, sample_rate: int,
                 n_chroma: int, radix2_exp: int, device: tp.Union[str, torch.device] = "cpu",
                 **chroma_kwargs: tp.Any) -> None:
        sources = list(getattr(stem_model, "sources", []))
        if not {"vocals", "other"} <= set(sources):
            raise ValueError(f"melody conditioning needs a demucs model with 'vocals' and 'other' "
                             f"stems, got sources {sources}")
        WaveformConditioner.__init__(self, dim=n_chroma, output_dim=output_dim, device=device)
        self.autocast = TorchAutocast(enabled=str(device) != "cpu", device_type=str(device),
                                      dtype=torch.float32)
        self.sample_rate = sample_rate
        self.match_len_on_eval = True
        self._use_masking = False
        self.duration = duration
        self.__dict__["demucs"] = stem_model.to(device).eval()
        self.stem_indices = torch.LongTensor([sources.index("vocals"), sources.index("other")]).to(device)
        self.chroma = ChromaExtractor(sample_rate=sample_rate, n_chroma=n_chroma, radix2_exp=radix2_exp,
                                      **chroma_kwargs).to(device)
        self.chroma_len = self._get_chroma_len()
        self.eval_wavs = None
        self.cache = None


@dataclass(frozen=True)


class TextEncoder:
    """A frozen T5 encoder and its tokenizer, shared by every LM that uses them."""

    tokenizer: tp.Any
    model: nn.Module
    directory: Path

    @property
    def dim(self) -> int:
        return int(self.model.config.d_model)


class LocalT5Conditioner(T5Conditioner):
    """``T5Conditioner`` over an already loaded :class:`TextEncoder`.

    The stock constructor loads ``name`` from the hub; everything else (tokenize, forward, the
    T5 kept outside the state dict) is inherited unchanged.
    """

    def __init__(self, encoder: TextEncoder, output_dim: int, device: tp.Union[str, torch.device],
                 word_dropout: float = 0.0) -> None:
        TextConditioner.__init__(self, encoder.dim, output_dim)
        self.device = str(device)
        self.name = encoder.directory.name
        self.finetune = False
        self.word_dropout = word_dropout
        self.normalize_text = False
        self.autocast = TorchAutocast(enabled=self.device != "cpu", device_type=self.device,
                                      dtype=torch.float32)
        self.t5_tokenizer = encoder.tokenizer
        self.__dict__["t5"] = encoder.model


def is_chord_model(model: BaseGenModel) -> bool:
    """Whether ``model`` takes chord chroma (:class:`ChordConditioner`)."""
    conditioners = model.lm.condition_provider.conditioners
    return CHROMA_ATTRIBUTE in conditioners and isinstance(conditioners[CHROMA_ATTRIBUTE], ChordConditioner)


def is_melody_model(model: BaseGenModel) -> bool:
    """Whether ``model`` takes a melody waveform (:class:`ChromaStemConditioner`)."""
    conditioners = model.lm.condition_provider.conditioners
    return CHROMA_ATTRIBUTE in conditioners and isinstance(conditioners[CHROMA_ATTRIBUTE],
                                                           ChromaStemConditioner)
