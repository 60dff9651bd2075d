"""MusicGen's decoding loop with a preallocated key/value cache and, on CUDA, one graph per step.

audiocraft's streaming decode (``LMModel.generate``) grows every layer's key/value cache with
``torch.cat`` at each step, which copies the whole cache, and launches some fifteen kernels per
layer: on a GPU a step of the 1.5B chord model waits on kernel launches, far above the time its
weights take to stream from memory (``bench/floor.py``). :class:`StaticDecoder` computes the
same tokens another way:

* the first step (the prepended conditions and any prompt tokens) runs through audiocraft's own
  streaming forward and sampler, unchanged, and its keys/values are copied into a cache
  allocated once per model;
* every later step runs the same layers on one token, writing its key/value in place and
  attending over the cache up to a bucket of :data:`BUCKET` positions (the positions not yet
  written are masked out);
* on CUDA each bucket's step is captured once as a CUDA graph and replayed, so a step is one
  launch instead of hundreds; on the CPU the same step runs eagerly (the test suite compares it
  with audiocraft token for token).

Everything around the model call (classifier-free guidance with both branches in one batch,
the codebook delay pattern, top-k / top-p sampling and the order in which the random numbers
are drawn) follows ``LMModel.generate`` and ``LMModel._sample_next_token`` of audiocraft 1.3.0
(``audiocraft/models/lm.py``), so a seed gives the same tokens as audiocraft up to rounding.

It serves LMs built as the published MusicGen checkpoints are (``memory_efficient`` attention
through torch's SDPA, pre-norm layers, sinusoidal positions, conditions prepended or
cross-attended); :func:`unsupported` names what else an LM uses, and :class:`StaticDecoder`
then refuses it.

Which loop runs: ``REMIXER_DECODE`` = ``auto`` (default: this decoder on CUDA, audiocraft's on the
CPU), ``static`` or ``audiocraft`` (:func:`decoder_from_env`, :func:`resolve_decoder`). On an H200
it decoded 9.8-11.1x more steps per second than audiocraft's loop (``bench/README.md``); on the
CPU, where launches are cheap, the gain is small and audiocraft's loop stays the reference.
"""
from __future__ import annotations

import contextlib
import logging
import os
import typing as tp
from dataclasses import dataclass

import torch
from audiocraft.models.lm import LMModel
from audiocraft.modules import transformer as ac_transformer
from audiocraft.modules.conditioners import ClassifierFreeGuidanceDropout, ConditioningAttributes
from audiocraft.utils import utils as ac_utils
from torch.nn import functional as F

__all__ = ["StaticDecoder", "unsupported", "decoder_from_env", "resolve_decoder", "DECODE_ENV",
           "DECODERS", "BUCKET"]

DECODE_ENV = "REMIXER_DECODE"
DECODERS = ("auto", "audiocraft", "static")
# Attention reads the cache up to the next multiple of BUCKET positions: one CUDA graph per
# bucket, and at most BUCKET - 1 masked positions read per step.
BUCKET = 256

logger = logging.getLogger(__name__)


def decoder_from_env(environ: tp.Mapping[str, str] = os.environ) -> str:
    """The decoder ``REMIXER_DECODE`` names: ``auto`` (default), ``audiocraft`` or ``static``."""
    name = environ.get(DECODE_ENV, "auto").strip().lower() or "auto"
    if name not in DECODERS:
        raise ValueError(f"{DECODE_ENV}={name!r}: choose one of {', '.join(DECODERS)}")
    return name


def resolve_decoder(name: str, device: torch.device) -> str:
    """``auto`` -> ``static`` on CUDA, ``audiocraft`` elsewhere; the others as they are."""
    if name not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {name!r}")
    if name == "auto":
        return "static" if device.type == "cuda" else "audiocraft"
    return name


def unsupported(lm: LMModel) -> tp.Optional[str]:
    """Why :class:`StaticDecoder` cannot run ``lm``, or None when it can."""
    transformer = lm.transformer
    if transformer.positional_embedding != "sin":
        return f"positional embedding {transformer.positional_embedding!r} (only 'sin')"
    ops = set(lm.fuser.cond2fuse.values())
    if not ops <= {"prepend", "cross"}:
        return f"conditions fused by {sorted(ops - {'prepend', 'cross'})} (only prepend and cross)"
    if lm.two_step_cfg:
        return "two-step classifier-free guidance"
    for layer in transformer.layers:
        attention = layer.self_attn
        if not (attention.custom and attention.memory_efficient):
            return "attention without memory_efficient (audiocraft's SDPA path)"
        if ac_transformer._efficient_attention_backend != "torch":
            return "the xformers attention backend"
        if attention.rope is not None or attention.past_context is not None:
            return "rotary embeddings or a finite attention context"
        if attention.kv_repeat != 1 or attention.qk_layer_norm or attention.attention_as_float32:
            return "grouped keys/values, qk layer norm or float32 attention"
        if not layer.norm_first:
            return "post-norm layers"
        cross = layer.cross_attention
        if cross is not None and (cross.qk_layer_norm or cross.attention_as_float32):
            return "qk layer norm or float32 cross-attention"
    return None


@dataclass
class _Cache:
    """Keys and values of every layer, ``[batch, heads, length, head_dim]`` each."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @property
    def length(self) -> int:
        return self.keys[0].shape[2]


class StaticDecoder:
    """Generates with one LM through a preallocated cache (and CUDA graphs on a GPU).

    Parameters
    ----------
    lm : audiocraft LMModel
        In eval mode; the decoder keeps a cache of its keys/values between calls (a few hundred
        MB for the published models' 30 s windows) and, on CUDA, its captured graphs.
    graphs : bool, optional
        Replay each step as a CUDA graph; default: when the LM is on CUDA.

    Not thread-safe: callers serialise generations (``remixer.generation`` holds one lock).
    """

    def __init__(self, lm: LMModel, *, graphs: tp.Optional[bool] = None) -> None:
        reason = unsupported(lm)
        if reason is not None:
            raise ValueError(f"the static decoder does not support this LM: {reason}")
        self.lm = lm
        self.device = next(lm.parameters()).device
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        if self.graphs and self.device.type != "cuda":
            raise ValueError("CUDA graphs need the LM on a CUDA device")
        layer = lm.transformer.layers[0].self_attn
        self.heads = layer.num_heads
        self.head_dim = layer.embed_dim // layer.num_heads
        self._cache: tp.Optional[_Cache] = None
        self._batch = 0
        # Step inputs the graphs read: the tokens of the step and its position.
        self._tokens: tp.Optional[torch.Tensor] = None
        self._position = torch.zeros(1, dtype=torch.long, device=self.device)
        self._cross: list[tp.Optional[tuple[torch.Tensor, torch.Tensor]]] = []
        self._cross_shape: tp.Optional[torch.Size] = None
        # One graph per bucket, each with its own memory pool: a pool shared by graphs that are
        # dropped and captured again (a grown cache) trips the caching allocator.
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}

    @torch.no_grad()
    def generate(self, prompt: tp.Optional[torch.Tensor], conditions: tp.List[ConditioningAttributes],
                 max_gen_len: int, use_sampling: bool = True, temp: float = 1.0, top_k: int = 250,
                 top_p: float = 0.0, cfg_coef: tp.Optional[float] = None, two_step_cfg: tp.Optional[bool] = None,
                 callback: tp.Optional[tp.Callable[[int, int], None]] = None) -> torch.Tensor:
        """``LMModel.generate(prompt, conditions, max_gen_len=..., ...)``, faster; same arguments.

        Returns ``[B, K, max_gen_len]`` tokens, the prompt's included.
        """
        lm = self.lm
        if two_step_cfg:
            raise ValueError("the static decoder runs both guidance branches in one batch "
                             "(two_step_cfg=False)")
        cfg_coef = lm.cfg_coef if cfg_coef is None else cfg_coef
        device = self.device
        num_samples = prompt.shape[0] if prompt is not None else max(1, len(conditions))
        # lm.py, generate: the conditions and their null twins in one batch.
        if conditions:
            null_conditions = ClassifierFreeGuidanceDropout(p=1.0)(conditions)
            tokenized = lm.condition_provider.tokenize(conditions + null_conditions)
            cfg_conditions = lm.condition_provider(tokenized)
        else:
            cfg_conditions = {}
        if prompt is None:
            prompt = torch.zeros((num_samples, lm.num_codebooks, 0), dtype=torch.long, device=device)
        B, K, T = prompt.shape
        start_offset = T
        if not start_offset < max_gen_len:
            raise ValueError(f"the prompt ({T} steps) must be shorter than max_gen_len ({max_gen_len})")
        pattern = lm.pattern_provider.get_pattern(max_gen_len)
        unknown_token = -1
        gen_codes = torch.full((B, K, max_gen_len), unknown_token, dtype=torch.long, device=device)
        gen_codes[..., :start_offset] = prompt
        gen_sequence, _, mask = pattern.build_pattern_sequence(gen_codes, lm.special_token_id)
        first = pattern.get_first_step_with_timesteps(start_offset)
        assert first is not None
        length = gen_sequence.shape[-1]

        # The first step is audiocraft's own, in streaming mode: it fills the caches we copy.
        with lm.streaming():
            state = lm.get_streaming_state()
            next_token = lm._sample_next_token(gen_sequence[..., :first], cfg_conditions, state,
                                               use_sampling, temp, top_k, top_p, cfg_coef=cfg_coef,
                                               two_step_cfg=False)
            self._write(gen_sequence, mask, first, next_token, unknown_token)
            position = self._adopt_streaming_state(batch=2 * B if cfg_conditions else B,
                                                   steps=length - first)
        state.clear()
        self._set_cross(cfg_conditions)
        if callback is not None:
            callback(1, length - first)
        for offset in range(first + 1, length):
            current = gen_sequence[..., offset - 1]
            logits = self._step(torch.cat([current, current]) if cfg_conditions else current, position)
            position += 1
            if cfg_conditions:
                cond_logits, uncond_logits = logits.split(B, dim=0)
                logits = uncond_logits + (cond_logits - uncond_logits) * cfg_coef
            next_token = _sample(logits, use_sampling, temp, top_k, top_p)
            self._write(gen_sequence, mask, offset, next_token, unknown_token)
            if callback is not None:
                callback(1 + offset - first, length - first)

        out_codes, _, out_mask = pattern.revert_pattern_sequence(gen_sequence, special_token=unknown_token)
        out_codes = out_codes[..., :max_gen_len]
        if (out_codes == unknown_token).any() or (out_codes < 0).any() or (out_codes > lm.card).any():
            raise RuntimeError("static decoding left invalid tokens (a bug: please report it)")
        return out_codes

    def _write(self, sequence: torch.Tensor, mask: torch.Tensor, offset: int, token: torch.Tensor,
               unknown: int) -> None:
        """lm.py, generate: masked codebooks get the special token; prompt tokens are kept."""
        B = sequence.shape[0]
        valid = mask[..., offset:offset + 1].expand(B, -1, -1)
        token = torch.where(valid, token, torch.full_like(token, self.lm.special_token_id))
        step = sequence[..., offset:offset + 1]
        sequence[..., offset:offset + 1] = torch.where(step == unknown, token, step)

    # -- the cache -------------------------------------------------------------------------------

    def _adopt_streaming_state(self, *, batch: int, steps: int) -> int:
        """Copy the streaming keys/values of the first step into the cache; return its length."""
        layers = self.lm.transformer.layers
        first = layers[0].self_attn._streaming_state["past_keys"]
        filled = first.shape[2]
        self._ensure_cache(batch, filled + steps, first.dtype)
        assert self._cache is not None
        for index, layer in enumerate(layers):
            state = layer.self_attn._streaming_state
            self._cache.keys[index][:, :, :filled].copy_(state["past_keys"])
            self._cache.values[index][:, :, :filled].copy_(state["past_values"])
        return filled

    def _ensure_cache(self, batch: int, length: int, dtype: torch.dtype) -> None:
        needed = -(-length // BUCKET) * BUCKET
        cache = self._cache
        if cache is not None and batch == self._batch and cache.length >= needed \
                and cache.keys[0].dtype == dtype:
            return
        self._graphs.clear()
        self._cache = None
        shape = (batch, self.heads, needed, self.head_dim)
        layers = len(self.lm.transformer.layers)
        self._cache = _Cache([torch.zeros(shape, dtype=dtype, device=self.device) for _ in range(layers)],
                             [torch.zeros(shape, dtype=dtype, device=self.device) for _ in range(layers)])
        self._batch = batch
        self._tokens = torch.zeros(batch, self.lm.num_codebooks, dtype=torch.long, device=self.device)
        logger.info("static decoder: cache of %d positions x %d layers, batch %d", needed, layers, batch)

    def _set_cross(self, conditions: tp.Mapping[str, tp.Any]) -> None:
        """Keys/values of the cross-attended conditions, computed once per call (audiocraft
        recomputes them at every step)."""
        dummy = torch.zeros(self._batch, 1, self.lm.dim, device=self.device,
                            dtype=self._cache.keys[0].dtype if self._cache else torch.float32)
        _, source = self.lm.fuser(dummy, dict(conditions))
        cross: list[tp.Optional[tuple[torch.Tensor, torch.Tensor]]] = []
        for layer in self.lm.transformer.layers:
            attention = layer.cross_attention
            if attention is None or source is None:
                cross.append(None)
                continue
            dim = attention.embed_dim
            weight, bias = attention.in_proj_weight, attention.in_proj_bias
            key = F.linear(source, weight[dim:2 * dim], None if bias is None else bias[dim:2 * dim])
            value = F.linear(source, weight[2 * dim:], None if bias is None else bias[2 * dim:])
            cross.append((_heads(key, self.heads), _heads(value, self.heads)))
        shape = None if source is None else source.shape
        if self.graphs and self._cross and shape == self._cross_shape:
            # Graphs read these tensors' memory: refresh them in place.
            for old, new in zip(self._cross, cross):
                if old is not None and new is not None:
                    old[0].copy_(new[0])
                    old[1].copy_(new[1])
            return
        self._graphs.clear()
        self._cross, self._cross_shape = cross, shape

    # -- one step ----------------------------------------------------------------------------------

    def _step(self, tokens: torch.Tensor, position: int) -> torch.Tensor:
        """Logits ``[batch, K, card]`` of the step at ``position`` (0-based in the cache)."""
        assert self._cache is not None and self._tokens is not None
        span = min(self._cache.length, (position // BUCKET + 1) * BUCKET)
        self._tokens.copy_(tokens)
        self._position.fill_(position)
        with _uncached_autocast(self.device.type):
            if not self.graphs:
                return self._forward(span)
            if span not in self._graphs:
                self._graphs[span] = self._capture(span)
        graph, logits = self._graphs[span]
        graph.replay()
        return logits

    def _capture(self, span: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """Capture the step over ``span`` cache positions (torch's recipe: warm up on a side stream)."""
        # The warm-up writes the current position's keys/values, which the replay rewrites.
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            self._forward(span)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            logits = self._forward(span)
        return graph, logits

    def _forward(self, span: int) -> torch.Tensor:
        """audiocraft's LM forward for one token, reading and writing the cache in place."""
        lm = self.lm
        cache = self._cache
        assert cache is not None and self._tokens is not None
        tokens, position = self._tokens, self._position
        x = sum(lm.emb[k](tokens[:, k]) for k in range(lm.num_codebooks))[:, None]  # [B, 1, dim]
        transformer = lm.transformer
        positions = position.view(1, 1, 1)
        x = x + transformer.positional_scale * ac_transformer.create_sin_embedding(
            positions, x.shape[-1], max_period=transformer.max_period, dtype=x.dtype)
        keys_seen = (torch.arange(span, device=self.device) <= position).view(1, 1, 1, span)
        for index, layer in enumerate(transformer.layers):
            attention = layer.self_attn
            projected = F.linear(layer.norm1(x), attention.in_proj_weight, attention.in_proj_bias)
            q, k, v = projected.view(x.shape[0], 1, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            keys, values = cache.keys[index], cache.values[index]
            keys.index_copy_(2, position, k)
            values.index_copy_(2, position, v)
            out = F.scaled_dot_product_attention(q, keys[:, :, :span], values[:, :, :span],
                                                 attn_mask=keys_seen)
            out = attention.out_proj(out.transpose(1, 2).reshape(x.shape[0], 1, -1).to(x.dtype))
            x = x + layer.layer_scale_1(out)
            cross = self._cross[index]
            if cross is not None:
                x = x + layer.layer_scale_cross(self._cross_attend(layer, layer.norm_cross(x), *cross))
            x = x + layer.layer_scale_2(layer._ff_block(layer.norm2(x)))
        if lm.out_norm:
            x = lm.out_norm(x)
        return torch.stack([lm.linears[k](x[:, 0]) for k in range(lm.num_codebooks)], dim=1)

    def _cross_attend(self, layer: tp.Any, x: torch.Tensor, keys: torch.Tensor,
                      values: torch.Tensor) -> torch.Tensor:
        attention = layer.cross_attention
        dim = attention.embed_dim
        bias = attention.in_proj_bias
        q = F.linear(x, attention.in_proj_weight[:dim], None if bias is None else bias[:dim])
        out = F.scaled_dot_product_attention(_heads(q, self.heads), keys, values)
        return attention.out_proj(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1).to(x.dtype))


def _uncached_autocast(device_type: str) -> tp.ContextManager:
    """The caller's autocast, without its cache of cast weights: a captured graph must not read
    cast copies that the cache frees when the caller's autocast block ends."""
    if not torch.is_autocast_enabled(device_type):
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.get_autocast_dtype(device_type), cache_enabled=False)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, T, heads * d]`` -> ``[B, heads, T, d]``."""
    B, T, C = x.shape
    return x.view(B, T, heads, C // heads).transpose(1, 2)


def _sample(logits: torch.Tensor, use_sampling: bool, temp: float, top_k: int, top_p: float) -> torch.Tensor:
    """lm.py, _sample_next_token after the model call: logits ``[B, K, card]`` -> ``[B, K, 1]``."""
    if use_sampling and temp > 0.0:
        probs = torch.softmax(logits / temp, dim=-1)
        if top_p > 0.0:
            return ac_utils.sample_top_p(probs, p=top_p)
        if top_k > 0:
            return ac_utils.sample_top_k(probs, k=top_k)
        return ac_utils.multinomial(probs, num_samples=1)
    return torch.argmax(logits, dim=-1, keepdim=True)
