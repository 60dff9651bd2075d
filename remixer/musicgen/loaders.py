"""MusicGen models and their parts from local files only; nothing touches the hub.

T5 and EnCodec are read from transformers-layout directories, the melody codec from its
``compression_state_dict.bin``, MBD from its ``.th``. Missing files raise
:class:`~remixer.weights.MissingWeightsError` with the ``python -m remixer.weights fetch``
command, and a T5 tokenizer that loaded empty (a transformers 5 trap) is refused. Checkpoints
hold pickled configs, so they are read with ``weights_only=False``: only pass verified files
(:class:`~remixer.weights.WeightsStore` checks them against the manifest).
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

import torch
from audiocraft.models import builders
from audiocraft.models.encodec import CompressionModel, HFEncodecCompressionModel
from audiocraft.models.multibanddiffusion import DiffusionProcess, MultiBandDiffusion
from omegaconf import OmegaConf
from torch import nn

from remixer.musicgen.builders import MusicGenModel, assemble, chord_config, inference_config
from remixer.musicgen.conditioners import BTC_PREFIX, TextEncoder
from remixer.weights import MissingWeightsError

__all__ = ["load_text_encoder", "load_encodec", "load_chord_model", "load_melody_model", "load_mbd",
           "checkpoint_btc_weights"]

_T5_FILES = ("config.json", "tokenizer.json", "model.safetensors")

_ENCODEC_FILES = ("config.json", "model.safetensors")


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
    cfg = chord_config(package["xp.cfg"], device, dtype, source=path)
    text_encoder, compression_model = _loaded(text_encoder, compression_model, device)
    return assemble(path.stem, cfg, package["model"], device, text_encoder, compression_model,
                    stem_model=None, source=path)


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
    cfg = inference_config(package["xp.cfg"], device, dtype, source=lm_path)
    codec_package = loaders.load_compression_model_ckpt(codec_path)
    if "pretrained" in codec_package:
        # A pointer export names the hub codec; the local EnCodec 32 kHz stands in for it.
        if encodec is None:
            raise ValueError(f"{codec_path} points to {codec_package['pretrained']!r}: pass its "
                             f"local directory as `encodec`")
        codec = encodec
    else:
        codec = _audiocraft_codec(codec_package, device, source=codec_path)
    text_encoder, codec = _loaded(text_encoder, codec, device)
    return assemble(lm_path.parent.name, cfg, package["best_state"], device, text_encoder, codec,
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


def _loaded(text_encoder: tp.Union[str, Path, TextEncoder], codec: tp.Union[str, Path, CompressionModel],
            device: tp.Union[str, torch.device]) -> tuple[TextEncoder, CompressionModel]:
    """The T5 encoder and the codec, loaded from their directories unless already loaded."""
    if not isinstance(text_encoder, TextEncoder):
        text_encoder = load_text_encoder(text_encoder, device=device)
    if not isinstance(codec, CompressionModel):
        codec = load_encodec(codec, device=device)
    return text_encoder, codec


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
