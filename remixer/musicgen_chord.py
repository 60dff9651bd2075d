"""MusicGen Chord and Melody on stock audiocraft 1.3.0: conditioners and local-file loaders.

MusicGen Chord is a melody-architecture LM whose 12-d chroma prefix holds multi-hot *chord*
chroma. The fork that trained it registered a ``chroma_chord`` conditioner that stock 1.3.0 does
not know, ran demucs and BTC inside it, and loaded T5/EnCodec from the Hugging Face hub. Here:

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

Local files only
    T5 and EnCodec are read from transformers-layout directories, the melody codec from its
    ``compression_state_dict.bin``; nothing touches the hub. Missing files raise
    :class:`~remixer.weights.MissingWeightsError` with the ``python -m remixer.weights fetch``
    command, and a T5 tokenizer that loaded empty (a transformers 5 trap) is refused.
"""
from __future__ import annotations

import copy
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import torch
from audiocraft.models import builders
from audiocraft.models.encodec import CompressionModel, HFEncodecCompressionModel
from audiocraft.models.genmodel import BaseGenModel
from audiocraft.models.lm import LMModel
from audiocraft.models.multibanddiffusion import DiffusionProcess, MultiBandDiffusion
from audiocraft.models.musicgen import MusicGen
from audiocraft.modules.chroma import ChromaExtractor
from audiocraft.modules.conditioners import (BaseConditioner, ChromaStemConditioner, ConditionType,
                                             ConditioningProvider, T5Conditioner, TextConditioner,
                                             WaveformConditioner, WavCondition)
from audiocraft.utils.autocast import TorchAutocast
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from btc.model import BTC, BTCConfig
from remixer.weights import MissingWeightsError

__all__ = ["CHROMA_ATTRIBUTE", "BTC_PREFIX", "ChordConditioner", "MelodyConditioner", "TextEncoder",
           "MusicGenModel", "BTCCopies", "load_text_encoder", "load_encodec", "load_chord_model",
           "build_chord_model", "load_melody_model", "load_mbd", "is_chord_model", "is_melody_model",
           "checkpoint_btc_weights"]

CHROMA_ATTRIBUTE = "self_wav"
# Where a MusicGen Chord checkpoint keeps the 170-class BTC its conditioner ran (221 keys).
BTC_PREFIX = f"condition_provider.conditioners.{CHROMA_ATTRIBUTE}.chroma.model."
# Training-only config keys that ConditioningProvider / ChromaStemConditioner would choke on or
# act on (a cache directory on the training cluster).
_TRAINING_KEYS = ("conditioners.self_wav.chroma_chord.cache_path",
                  "conditioners.self_wav.chroma_stem.cache_path",
                  "conditioners.args.merge_text_conditions_p",
                  "conditioners.args.drop_desc_p")
_T5_FILES = ("config.json", "tokenizer.json", "model.safetensors")
_ENCODEC_FILES = ("config.json", "model.safetensors")


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


class _LocalT5Conditioner(T5Conditioner):
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


def is_chord_model(model: BaseGenModel) -> bool:
    """Whether ``model`` takes chord chroma (:class:`ChordConditioner`)."""
    conditioners = model.lm.condition_provider.conditioners
    return CHROMA_ATTRIBUTE in conditioners and isinstance(conditioners[CHROMA_ATTRIBUTE], ChordConditioner)


def is_melody_model(model: BaseGenModel) -> bool:
    """Whether ``model`` takes a melody waveform (:class:`ChromaStemConditioner`)."""
    conditioners = model.lm.condition_provider.conditioners
    return CHROMA_ATTRIBUTE in conditioners and isinstance(conditioners[CHROMA_ATTRIBUTE],
                                                           ChromaStemConditioner)


def load_text_encoder(directory: tp.Union[str, Path], *, device: tp.Union[str, torch.device] = "cpu",
                      ) -> TextEncoder:
    """Load T5 from a transformers-layout directory (``config.json``, ``tokenizer.json``, weights).

    Raises
    ------
    MissingWeightsError
        A file is absent.
    ValueError
        The tokenizer came back empty or does not fit the encoder's vocabulary.
    """
    from transformers import T5EncoderModel, T5Tokenizer

    directory = _require_files(directory, _T5_FILES, what="T5 text encoder", group="t5-base")
    tokenizer = T5Tokenizer.from_pretrained(str(directory), local_files_only=True)
    model = T5EncoderModel.from_pretrained(str(directory), local_files_only=True)
    # transformers 5 builds a placeholder vocabulary (specials and "▁" only) instead of raising
    # when it finds no usable tokenizer file: every word would encode as <unk>.
    regular = set(tokenizer.get_vocab()) - set(tokenizer.all_special_tokens) - {"▁"}
    if not regular:
        raise ValueError(f"the T5 tokenizer in {directory} loaded EMPTY (no vocabulary): "
                         f"tokenizer.json is not a T5 tokenizer; re-fetch it with "
                         f"`python -m remixer.weights fetch t5-base`")
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(f"the T5 tokenizer in {directory} has {len(tokenizer)} tokens but the encoder "
                         f"only embeds {model.config.vocab_size}: the files belong to different models")
    return TextEncoder(tokenizer, model.to(device).eval().requires_grad_(False), directory)


def load_encodec(directory: tp.Union[str, Path], *, device: tp.Union[str, torch.device] = "cpu",
                 ) -> CompressionModel:
    """EnCodec 32 kHz from a transformers-layout directory, wrapped as audiocraft expects."""
    from transformers import EncodecModel

    directory = _require_files(directory, _ENCODEC_FILES, what="EnCodec", group="encodec-32khz")
    model = EncodecModel.from_pretrained(str(directory), local_files_only=True)
    return HFEncodecCompressionModel(model).to(device).eval()


def load_chord_model(path: tp.Union[str, Path], *, device: tp.Union[str, torch.device],
                     text_encoder: tp.Union[str, Path, TextEncoder],
                     compression_model: tp.Union[str, Path, CompressionModel],
                     dtype: tp.Optional[torch.dtype] = None) -> MusicGenModel:
    """Load a MusicGen Chord ``.th`` (``{'xp.cfg': DictConfig, 'model': state dict}``).

    Parameters
    ----------
    path : str or Path
        The checkpoint, e.g. ``musicgen-stereo-chord.th``. It holds a pickled config, so it is
        read with ``weights_only=False``: only pass files whose checksum was verified.
    device : str or torch.device
    text_encoder : path or TextEncoder
        The T5 directory, or an encoder already loaded (shared between models).
    compression_model : path or CompressionModel
        The EnCodec 32 kHz directory (transformers layout) or an already loaded codec.
    dtype : torch.dtype, optional
        LM parameter dtype; default float16 on a GPU, float32 on the CPU.

    Returns
    -------
    model : MusicGenModel
        In eval mode, stereo when the config interleaves stereo codebooks.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"MusicGen Chord checkpoint not found: {path}; fetch it with "
                                  f"`python -m remixer.weights fetch musicgen-{_chord_version(path)}`")
    try:
        package = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ValueError(f"{path} is not a readable MusicGen Chord checkpoint: {error}") from error
    if not isinstance(package, dict) or not {"xp.cfg", "model"} <= set(package):
        found = sorted(package) if isinstance(package, dict) else type(package).__name__
        raise ValueError(f"{path} is not a MusicGen Chord checkpoint: expected keys 'xp.cfg' and "
                         f"'model', found {found}")
    cfg = _chord_config(package["xp.cfg"], device, dtype, source=path)
    return _assemble(path.stem, cfg, package["model"], device, text_encoder, compression_model,
                     stem_model=None, source=path)


def build_chord_model(config: tp.Union[DictConfig, dict], *, name: str,
                      device: tp.Union[str, torch.device], text_encoder: TextEncoder,
                      compression_model: CompressionModel,
                      dtype: tp.Optional[torch.dtype] = None) -> MusicGenModel:
    """A MusicGen Chord model from a training config alone, with audiocraft's initial weights.

    :func:`load_chord_model` without the state dict: the same config edits, builder, codec check
    and dtype, so a model built from a published config has the published shapes and runs
    exactly as the loaded one does. Decoding speed depends on the shapes only, which is what
    ``bench/gpu_smoke.py --random-real-size`` measures with it.

    Parameters
    ----------
    config : DictConfig or dict
        A chord LM's ``xp.cfg`` (``conditioners.self_wav.model: chroma_chord``).
    name : str
        The model's name (e.g. ``musicgen-stereo-chord``), used in errors.
    device, text_encoder, compression_model, dtype
        As for :func:`load_chord_model` (already loaded encoder and codec only).
    """
    source = Path(name)
    cfg = _chord_config(config, device, dtype, source=source)
    return _assemble(name, cfg, None, device, text_encoder, compression_model, stem_model=None,
                     source=source)


def load_melody_model(lm_path: tp.Union[str, Path], codec_path: tp.Union[str, Path], *,
                      device: tp.Union[str, torch.device], text_encoder: tp.Union[str, Path, TextEncoder],
                      stem_model: nn.Module,
                      encodec: tp.Union[str, Path, CompressionModel, None] = None,
                      dtype: tp.Optional[torch.dtype] = None) -> MusicGenModel:
    """Load a stock melody model from its ``state_dict.bin`` and ``compression_state_dict.bin``.

    Parameters
    ----------
    lm_path, codec_path : str or Path
        The two files of ``facebook/musicgen-melody`` (or ``-melody-large``,
        ``-stereo-melody-large``).
    device : str or torch.device
    text_encoder : path or TextEncoder
    stem_model : nn.Module
        A demucs model (htdemucs) for the melody's stems.
    encodec : path or CompressionModel, optional
        EnCodec 32 kHz, needed only when the codec file is a pointer to it.
    dtype : torch.dtype, optional
    """
    from audiocraft.models import loaders

    lm_path, codec_path = Path(lm_path), Path(codec_path)
    for file, name in ((lm_path, "LM"), (codec_path, "codec")):
        if not file.is_file():
            raise MissingWeightsError(f"MusicGen melody {name} file not found: {file}; fetch it with "
                                      f"`python -m remixer.weights fetch {_melody_group(lm_path)}`")
    package = loaders.load_lm_model_ckpt(lm_path)
    cfg = _inference_config(package["xp.cfg"], device, dtype, source=lm_path)
    codec_package = loaders.load_compression_model_ckpt(codec_path)
    if "pretrained" in codec_package:
        # A pointer export names the hub codec; the local EnCodec 32 kHz stands in for it.
        if encodec is None:
            raise ValueError(f"{codec_path} points to {codec_package['pretrained']!r}: pass its "
                             f"local directory as `encodec`")
        codec = encodec
    else:
        codec = _audiocraft_codec(codec_package, device, source=codec_path)
    return _assemble(lm_path.parent.name, cfg, package["best_state"], device, text_encoder, codec,
                     stem_model=stem_model, source=lm_path)


def load_mbd(path: tp.Union[str, Path], codec_path: tp.Union[str, Path], *,
             device: tp.Union[str, torch.device]) -> MultiBandDiffusion:
    """Multi-Band Diffusion for 32 kHz MusicGen tokens from local files.

    Parameters
    ----------
    path : str or Path
        ``mbd_musicgen_32khz.th`` (pickled band configs, so read with ``weights_only=False``).
    codec_path : str or Path
        ``facebook/musicgen-small``'s ``compression_state_dict.bin`` (EnCodec 32 kHz).
    device : str or torch.device
    """
    from audiocraft.models import loaders
    from audiocraft.modules.diffusion_schedule import NoiseSchedule

    path, codec_path = Path(path), Path(codec_path)
    for file in (path, codec_path):
        if not file.is_file():
            raise MissingWeightsError(f"Multi-Band Diffusion file not found: {file}; fetch it with "
                                      f"`python -m remixer.weights fetch mbd`")
    codec = _audiocraft_codec(loaders.load_compression_model_ckpt(codec_path), device, source=codec_path)
    package = torch.load(path, map_location="cpu", weights_only=False)
    processes = []
    for band in range(package["n_bands"]):
        cfg = package[band]["cfg"]
        model = builders.get_diffusion_model(cfg)
        model.load_state_dict(package[band]["model_state"])
        processor = builders.get_processor(cfg=cfg.processor, sample_rate=package["sample_rate"])
        processor.load_state_dict(package[band]["processor_state"])
        schedule = NoiseSchedule(**cfg.schedule, sample_processor=processor.to(device), device=device)
        processes.append(DiffusionProcess(model=model.to(device).eval(), noise_schedule=schedule))
    return MultiBandDiffusion(DPs=processes, codec_model=codec)


def checkpoint_btc_weights(path: tp.Union[str, Path]) -> dict[str, torch.Tensor]:
    """The BTC state dict a MusicGen Chord ``.th`` carries (keys under :data:`BTC_PREFIX`).

    The published chord models recognised chords with this copy: their conditioner loaded the
    separate ``btc_model_large_voca.pt`` first, then the LM state dict overwrote its weights.
    Read memory-mapped, so only the BTC tensors (about 12 MB) are read from a multi-GB file.

    Raises
    ------
    MissingWeightsError
        The file is absent.
    ValueError
        It is not a chord checkpoint, or carries no BTC keys.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"MusicGen Chord checkpoint not found: {path}; fetch it with "
                                  f"`python -m remixer.weights fetch musicgen-{_chord_version(path)}`")
    try:
        try:
            package = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except RuntimeError:  # only zip-format files map; an older pickle is read whole
            package = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ValueError(f"{path} is not a readable MusicGen Chord checkpoint: {error}") from error
    state = package.get("model") if isinstance(package, dict) else None
    if not isinstance(state, tp.Mapping):
        raise ValueError(f"{path} is not a MusicGen Chord checkpoint: no 'model' state dict")
    weights = {key[len(BTC_PREFIX):]: value.float().clone()
               for key, value in state.items() if key.startswith(BTC_PREFIX)}
    if not weights:
        raise ValueError(f"{path} carries no BTC weights (no keys under {BTC_PREFIX!r})")
    return weights


def _audiocraft_codec(package: tp.Mapping[str, tp.Any], device: tp.Union[str, torch.device], *,
                      source: Path) -> CompressionModel:
    """An exported audiocraft codec (``{'xp.cfg': yaml, 'best_state': ...}``), as audiocraft's loader."""
    if "pretrained" in package:
        raise ValueError(f"{source} only points to {package['pretrained']!r}; pass that codec instead")
    cfg = OmegaConf.create(package["xp.cfg"])
    cfg.device = str(device)
    codec = builders.get_compression_model(cfg)
    codec.load_state_dict(package["best_state"])
    return codec.eval()


def _assemble(name: str, cfg: DictConfig, state: tp.Optional[tp.Mapping[str, torch.Tensor]],
              device: tp.Union[str, torch.device], text_encoder: tp.Union[str, Path, TextEncoder],
              compression_model: tp.Union[str, Path, CompressionModel], *,
              stem_model: tp.Optional[nn.Module], source: Path) -> MusicGenModel:
    """The LM built from ``cfg``, given ``state`` (None keeps the builder's initial weights)."""
    if not isinstance(text_encoder, TextEncoder):
        text_encoder = load_text_encoder(text_encoder, device=device)
    if not isinstance(compression_model, CompressionModel):
        compression_model = load_encodec(compression_model, device=device)
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


def _chord_config(raw: tp.Any, device: tp.Union[str, torch.device], dtype: tp.Optional[torch.dtype],
                  *, source: Path) -> DictConfig:
    """The inference config of a chord LM; refuses any other conditioner kind."""
    cfg = _inference_config(raw, device, dtype, source=source)
    kind = cfg.conditioners.get(CHROMA_ATTRIBUTE, {}).get("model")
    if kind != "chroma_chord":
        raise ValueError(f"{source} is not a chord model: conditioners.self_wav.model is {kind!r}")
    return cfg


def _inference_config(raw: tp.Any, device: tp.Union[str, torch.device], dtype: tp.Optional[torch.dtype],
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
            conditioners[attribute] = _LocalT5Conditioner(text_encoder, cfg.transformer_lm.dim, cfg.device,
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


def _require_files(directory: tp.Union[str, Path], names: tp.Iterable[str], *, what: str, group: str) -> Path:
    directory = Path(directory)
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise MissingWeightsError(f"{what} files missing in {directory}: {', '.join(missing)}; "
                                  f"fetch them with `python -m remixer.weights fetch {group}`")
    return directory


def _chord_version(path: Path) -> str:
    return path.stem.removeprefix("musicgen-") or "chord"


def _melody_group(lm_path: Path) -> str:
    return lm_path.parent.name if lm_path.parent.name.startswith("musicgen-") else "musicgen-melody"


def _few(keys: list[str], limit: int = 5) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:limit]) + (f" … ({len(keys)} in all)" if len(keys) > limit else "")
