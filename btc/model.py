"""The BTC network (Park et al., "A Bi-directional Transformer for Musical Chord Recognition", 2019).

Module and parameter names reproduce the published checkpoints exactly (221 keys, including the
custom ``gamma``/``beta`` LayerNorm and the unused LSTM), so ``btc_model.pt`` (25 classes) and
``btc_model_large_voca.pt`` (170 classes) load with ``strict=True``. The computation follows the
reference: sinusoidal timing signal, layers of a causal and an anti-causal pre-norm attention
block whose outputs are concatenated and projected, a convolutional feed-forward with a ReLU after
*each* convolution, LayerNorm with the unbiased standard deviation. Attention runs through
:func:`torch.nn.functional.scaled_dot_product_attention`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BTCConfig", "BTC"]

_LAYER_KEY = re.compile(r"^self_attn_layers\.self_attn_layers\.(\d+)\.")
_BLOCK = "self_attn_layers.self_attn_layers.0.attn_block."


@dataclass
class BTCConfig:
    """Hyper-parameters of BTC; the defaults are the published ``run_config.yaml`` (170 classes)."""

    feature_size: int = 144
    hidden_size: int = 128
    num_layers: int = 8
    num_heads: int = 4
    total_key_depth: int = 128
    total_value_depth: int = 128
    filter_size: int = 128
    timestep: int = 108
    num_chords: int = 170
    input_dropout: float = 0.2
    layer_dropout: float = 0.2
    attention_dropout: float = 0.2
    relu_dropout: float = 0.2

    def __post_init__(self) -> None:
        for name in ("feature_size", "hidden_size", "num_layers", "num_heads", "total_key_depth",
                     "total_value_depth", "filter_size", "timestep", "num_chords"):
            if getattr(self, name) < 1:
                raise ValueError(f"BTCConfig.{name} must be >= 1, got {getattr(self, name)}")
        for depth in ("total_key_depth", "total_value_depth"):
            if getattr(self, depth) % self.num_heads:
                raise ValueError(
                    f"BTCConfig.{depth}={getattr(self, depth)} is not divisible by "
                    f"num_heads={self.num_heads}"
                )

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, torch.Tensor], num_heads: int = 4, timestep: int = 108
    ) -> "BTCConfig":
        """Read the sizes of a BTC state dict (widths, layer count, number of chord classes).

        Parameters
        ----------
        state_dict : mapping of str to tensor
            A BTC state dict such as ``checkpoint['model']``.
        num_heads, timestep : int
            Not recoverable from the weights; the published models use 4 and 108.

        Returns
        -------
        config : BTCConfig
            Dropouts keep their defaults (inactive at inference).

        Raises
        ------
        ValueError
            If the state dict lacks the keys that carry the sizes (not a BTC state dict).
        """
        needed = (
            "self_attn_layers.embedding_proj.weight",
            _BLOCK + "multi_head_attention.query_linear.weight",
            _BLOCK + "multi_head_attention.value_linear.weight",
            _BLOCK + "positionwise_convolution.layers.0.conv.weight",
            "output_layer.output_projection.weight",
        )
        absent = [key for key in needed if key not in state_dict]
        if absent:
            raise ValueError(f"not a BTC state dict: it lacks {', '.join(absent)}")
        layers = {int(m.group(1)) for key in state_dict if (m := _LAYER_KEY.match(key))}
        hidden_size, feature_size = state_dict[needed[0]].shape
        return cls(
            feature_size=feature_size,
            hidden_size=hidden_size,
            num_layers=max(layers) + 1,
            num_heads=num_heads,
            total_key_depth=state_dict[needed[1]].shape[0],
            total_value_depth=state_dict[needed[2]].shape[0],
            filter_size=state_dict[needed[3]].shape[0],
            timestep=timestep,
            num_chords=state_dict[needed[4]].shape[0],
        )


class _LayerNorm(nn.Module):
    """``gamma·(x − mean)/(std + eps) + beta`` with the unbiased std, as the weights were trained."""

    def __init__(self, size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(size))
        self.beta = nn.Parameter(torch.zeros(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std, mean = torch.std_mean(x, dim=-1, keepdim=True, correction=1)
        return self.gamma * (x - mean) / (std + self.eps) + self.beta


class _Attention(nn.Module):
    def __init__(self, config: BTCConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.dropout = config.attention_dropout
        self.query_linear = nn.Linear(config.hidden_size, config.total_key_depth, bias=False)
        self.key_linear = nn.Linear(config.hidden_size, config.total_key_depth, bias=False)
        self.value_linear = nn.Linear(config.hidden_size, config.total_value_depth, bias=False)
        self.output_linear = nn.Linear(config.total_value_depth, config.hidden_size, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, depth = x.shape
        return x.view(batch, length, self.num_heads, depth // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        # SDPA's default scale, depth_per_head ** -0.5, is the reference's query scaling.
        context = F.scaled_dot_product_attention(
            self._heads(self.query_linear(x)),
            self._heads(self.key_linear(x)),
            self._heads(self.value_linear(x)),
            attn_mask=allowed,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.output_linear(context.transpose(1, 2).flatten(2))


class _Conv(nn.Module):
    """Kernel-3 convolution over time on channel-last input, zero padded on both sides."""

    def __init__(self, in_size: int, out_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_size, out_size, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class _ConvFeedForward(nn.Module):
    def __init__(self, config: BTCConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [_Conv(config.hidden_size, config.filter_size), _Conv(config.filter_size, config.hidden_size)]
        )
        self.dropout = nn.Dropout(config.relu_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            # The published weights were trained with a ReLU after the last conv too.
            x = self.dropout(F.relu(layer(x)))
        return x


class _Block(nn.Module):
    """Pre-norm self-attention + conv feed-forward, each with a residual connection."""

    def __init__(self, config: BTCConfig) -> None:
        super().__init__()
        self.multi_head_attention = _Attention(config)
        self.positionwise_convolution = _ConvFeedForward(config)
        self.layer_norm_mha = _LayerNorm(config.hidden_size)
        self.layer_norm_ffn = _LayerNorm(config.hidden_size)
        self.dropout = nn.Dropout(config.layer_dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        # Dropout of the residual sum (not of the branch) is how the reference was trained.
        x = self.dropout(x + self.multi_head_attention(self.layer_norm_mha(x), allowed))
        return self.dropout(x + self.positionwise_convolution(self.layer_norm_ffn(x)))


class _BidirectionalLayer(nn.Module):
    def __init__(self, config: BTCConfig) -> None:
        super().__init__()
        self.attn_block = _Block(config)
        self.backward_attn_block = _Block(config)
        self.linear = nn.Linear(2 * config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        forward = self.attn_block(x, past)
        backward = self.backward_attn_block(x, past.transpose(0, 1))
        return self.linear(torch.cat([forward, backward], dim=-1))


def _timing_signal(length: int, channels: int) -> torch.Tensor:
    """tensor2tensor sinusoids [1, length, channels]: all sines first, then all cosines."""
    half = channels // 2
    increment = math.log(1.0e4) / max(half - 1, 1)
    inverse = torch.exp(torch.arange(half, dtype=torch.float64) * -increment)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inverse[None, :]
    signal = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(signal, (0, channels % 2)).float().unsqueeze(0)


class _Encoder(nn.Module):
    def __init__(self, config: BTCConfig) -> None:
        super().__init__()
        self.embedding_proj = nn.Linear(config.feature_size, config.hidden_size, bias=False)
        self.self_attn_layers = nn.ModuleList(
            [_BidirectionalLayer(config) for _ in range(config.num_layers)]
        )
        self.layer_norm = _LayerNorm(config.hidden_size)
        self.input_dropout = nn.Dropout(config.input_dropout)
        # Fixed, not a parameter: kept out of the state dict like in the published files.
        self.register_buffer(
            "timing_signal", _timing_signal(config.timestep, config.hidden_size), persistent=False
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        length = features.shape[1]
        x = self.embedding_proj(self.input_dropout(features)) + self.timing_signal[:, :length]
        # True where attention is allowed: the forward block sees the frame and earlier frames.
        past = torch.ones(length, length, dtype=torch.bool, device=features.device).tril()
        for layer in self.self_attn_layers:
            x = layer(x, past)
        return self.layer_norm(x)


class _OutputLayer(nn.Module):
    def __init__(self, config: BTCConfig) -> None:
        super().__init__()
        self.output_projection = nn.Linear(config.hidden_size, config.num_chords)
        # Never called: present only because the published state dicts contain its weights.
        self.lstm = nn.LSTM(
            config.hidden_size, config.hidden_size // 2, batch_first=True, bidirectional=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_projection(x)


class BTC(nn.Module):
    """Bi-directional Transformer for Chord recognition.

    Parameters
    ----------
    config : BTCConfig

    Examples
    --------
    >>> model = BTC(BTCConfig(num_chords=25)).eval()
    >>> model(torch.zeros(2, 108, 144)).shape
    torch.Size([2, 108, 25])
    """

    def __init__(self, config: BTCConfig) -> None:
        super().__init__()
        self.config = config
        self.self_attn_layers = _Encoder(config)
        self.output_layer = _OutputLayer(config)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Chord logits [B, T, num_chords] of normalized CQT features [B, T, feature_size], T <= timestep."""
        if features.ndim != 3 or features.shape[-1] != self.config.feature_size:
            raise ValueError(
                f"BTC expects features [batch, frames, {self.config.feature_size}], "
                f"got {tuple(features.shape)}"
            )
        if features.shape[1] > self.config.timestep:
            raise ValueError(
                f"BTC windows hold at most {self.config.timestep} frames, got {features.shape[1]}"
            )
        return self.output_layer(self.self_attn_layers(features))

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, torch.Tensor], num_heads: int = 4, timestep: int = 108
    ) -> "BTC":
        """Build a model sized after ``state_dict`` and load it strictly.

        Raises
        ------
        ValueError
            Listing missing keys, unexpected keys and shape mismatches, if any.
        """
        model = cls(BTCConfig.from_state_dict(state_dict, num_heads=num_heads, timestep=timestep))
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(expected))
        mismatched = [
            f"{key} {tuple(state_dict[key].shape)} (expected {tuple(expected[key].shape)})"
            for key in expected
            if key in state_dict and tuple(state_dict[key].shape) != tuple(expected[key].shape)
        ]
        problems = [
            f"{label} ({len(items)}): {', '.join(items[:5])}{' …' if len(items) > 5 else ''}"
            for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                 ("wrong shapes", mismatched))
            if items
        ]
        if problems:
            raise ValueError("BTC state dict does not match the published layout: " + "; ".join(problems))
        model.load_state_dict(state_dict, strict=True)
        return model
