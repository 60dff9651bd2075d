"""One htdemucs pass: a song in, four stems out.

Everything downstream that needs sources reads them from the single `Stems` record made here:
the chord recogniser (`chord_source`, vocals+bass+other: no drums), the All-In-One analyser
(all four stems) and the mixer (`vocals`, `accompaniment`). The upstream predictors ran
htdemucs-class separation at least four times per request; this module is the only place that
separates, and `Separator.calls` lets the pipeline prove it.

The pass follows demucs' own `separate` CLI: convert to the model's rate (44.1 kHz) and stereo,
scale by the mono reference's std, `demucs.apply.apply_model` over overlapping segments
(bounded memory on long songs, `shifts=0` so the result is deterministic), undo the
normalisation, and resample the stems back to the INPUT rate so the pipeline never resamples a
stem twice.
"""
from __future__ import annotations

import typing as tp
from dataclasses import dataclass
from pathlib import Path

import julius
import numpy as np
import torch
import yaml
from demucs.apply import BagOfModels, Model, apply_model
from demucs.states import load_model

from remixer.audio import check_positive_int
from remixer.cancellation import CancelToken

STEM_NAMES: tuple[str, ...] = ("drums", "bass", "other", "vocals")
_LEGACY_KEYS = ("klass", "args", "kwargs", "state")


@dataclass(frozen=True, eq=False)
class Stems:
    """The four htdemucs stems of one song, each ``(2, T)`` float32 at ``sample_rate``.

    Attributes
    ----------
    drums, bass, other, vocals : np.ndarray
        Stereo stems, all of the same length as the separated input.
    sample_rate : int
        Rate of every stem (the rate of the audio given to `Separator.separate`).
    """

    drums: np.ndarray
    bass: np.ndarray
    other: np.ndarray
    vocals: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, (int, np.integer)) or self.sample_rate <= 0:
            raise ValueError(f"Stems: sample_rate must be a positive int, got {self.sample_rate!r}")
        shape = self.drums.shape
        for name in STEM_NAMES:
            stem = getattr(self, name)
            if not isinstance(stem, np.ndarray) or stem.ndim != 2 or stem.shape[0] != 2:
                got = getattr(stem, "shape", type(stem).__name__)
                raise ValueError(f"Stems: {name} must be a (2, samples) array, got {got}")
            if stem.shape != shape:
                raise ValueError(f"Stems: {name} has shape {stem.shape}, drums has {shape}")
            if stem.dtype != np.float32:
                raise ValueError(f"Stems: {name} must be float32, got {stem.dtype}")

    @property
    def num_samples(self) -> int:
        """Length of every stem in samples."""
        return self.drums.shape[1]

    @property
    def accompaniment(self) -> np.ndarray:
        """Everything but the vocals: drums + bass + other, ``(2, T)``."""
        return self.drums + self.bass + self.other

    @property
    def chord_source(self) -> np.ndarray:
        """What chords are read from: vocals + bass + other (drums removed), ``(2, T)``.

        The published conditioner's input, so the chord models see the chords they were trained
        with; it also reads sung harmony better than bass + other (docs/conditioning.md §2).
        """
        return self.vocals + self.bass + self.other

    def as_dict(self) -> dict[str, np.ndarray]:
        """Stems by name, in demucs' training order (drums, bass, other, vocals)."""
        return {name: getattr(self, name) for name in STEM_NAMES}


class Separator:
    """Runs a demucs model (an `HTDemucs` or a `BagOfModels`) once per song.

    Parameters
    ----------
    model : demucs model or BagOfModels
        Its ``sources`` must name all of drums, bass, other and vocals (any order).
    device : str or torch.device
        Where the model runs; the full-length mix and stems stay on the CPU and only one
        segment at a time visits the device.
    segment : float or None
        Seconds per chunk; None keeps the model's own (HTDemucs cannot exceed it).
    overlap : float
        Fraction of a segment shared with the next one, in [0, 1).
    progress : bool
        Show demucs' tqdm progress bar.

    Attributes
    ----------
    calls : int
        Number of `separate` passes run so far.
    """

    def __init__(self, model: Model | BagOfModels, device: str | torch.device = "cpu", *,
                 segment: float | None = None, overlap: float = 0.25,
                 progress: bool = False) -> None:
        sources = list(getattr(model, "sources", []))
        missing = [name for name in STEM_NAMES if name not in sources]
        if missing:
            raise ValueError(f"demucs model sources {sources} lack {missing}; "
                             f"need all of {list(STEM_NAMES)}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        limit = _max_segment(model)
        if segment is not None and not 0.0 < segment <= limit:
            raise ValueError(f"segment must be in (0, {limit}] s for this model, got {segment}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.segment = segment
        self.overlap = overlap
        self.progress = progress
        # Source index of each stem, looked up by name: checkpoints decide the order.
        self._index = {name: sources.index(name) for name in STEM_NAMES}
        self.calls = 0

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu",
                        **kwargs: tp.Any) -> Separator:
        """Load a demucs checkpoint and wrap it.

        Parameters
        ----------
        path : str or Path
            Either the legacy demucs file (``955717e8-8726e21a.th``: a pickled dict with
            ``klass``, ``args``, ``kwargs``, ``state``, ``training_args``; it stores a class
            object, so it is unpickled with ``weights_only=False``, only ever do that on files
            whose checksum was verified), a Hugging Face ``<sig>.safetensors`` file (class and
            arguments in its metadata), or the bag ``<name>.yaml`` listing such files beside it.
        device : str or torch.device
        **kwargs
            Passed to `Separator` (segment, overlap, progress).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"demucs checkpoint not found: {path}")
        suffix = path.suffix.lower()
        if suffix in (".th", ".pt", ".pth"):
            model: Model | BagOfModels = _load_legacy(path)
        elif suffix == ".safetensors":
            model = _load_safetensors(path)
        elif suffix in (".yaml", ".yml"):
            model = _load_bag(path)
        else:
            raise ValueError(f"{path}: unknown demucs checkpoint type {suffix!r} "
                             f"(expected .th, .safetensors or a bag .yaml)")
        return cls(model, device, **kwargs)

    @property
    def sample_rate(self) -> int:
        """The rate the model works at (44100 for htdemucs)."""
        return int(self.model.samplerate)

    def separate(self, wav: np.ndarray, sample_rate: int, *, cancel: CancelToken | None = None) -> Stems:
        """Split a song into drums, bass, other and vocals in one pass.

        Parameters
        ----------
        wav : np.ndarray, shape ``(channels, samples)`` or ``(samples,)``
            Mono or stereo audio; mono is duplicated to stereo as demucs does.
        sample_rate : int
            Rate of `wav`; the stems come back at this rate, with the same length.
        cancel : CancelToken, optional
            Checked before and after every chunk: a cancel raises ``Cancelled`` within one chunk.
            Each chunk's end reports ``progress_callback(chunks done, chunks in all)``.

        Returns
        -------
        Stems
            Stereo float32 stems.
        """
        mix = _validate_wav(wav, sample_rate)
        length = mix.shape[-1]
        mix = _to_stereo(mix)
        if sample_rate != self.sample_rate:
            # full=True keeps enough samples to resample back to exactly `length`.
            mix = julius.resample_frac(mix, int(sample_rate), self.sample_rate, full=True)
        # Standardise like demucs' CLI, but scale only: its mean shift adds the song's DC
        # offset back to every stem, so the four would no longer sum to the mix.
        std = mix.mean(0).std(correction=0) + 1e-8  # population std: defined for 1 sample
        out = apply_model(self.model, (mix / std)[None], shifts=0, split=True,
                          overlap=self.overlap, segment=self.segment, progress=self.progress,
                          device=self.device, callback=self._chunk_callback(cancel, mix.shape[-1]))[0]
        out = out * std
        if sample_rate != self.sample_rate:
            out = julius.resample_frac(out, self.sample_rate, int(sample_rate),
                                       output_length=length)
        self.calls += 1
        stems = {name: out[index].numpy().astype(np.float32, copy=False)
                 for name, index in self._index.items()}
        return Stems(sample_rate=int(sample_rate), **stems)

    def chunks(self, length: int) -> int:
        """How many chunks :meth:`separate` runs on ``length`` samples at the model's rate (every
        model of a bag runs them all)."""
        models = self.model.models if isinstance(self.model, BagOfModels) else [self.model]
        count = 0
        for model in models:
            # demucs.apply.apply_model's split: a chunk starts every stride.
            segment_length = int(model.samplerate * (self.segment or model.segment))
            count += len(range(0, length, int((1 - self.overlap) * segment_length)))
        return count

    def _chunk_callback(self, cancel: CancelToken | None, length: int,
                        ) -> tp.Callable[[dict], None] | None:
        """demucs' per-chunk callback (a dict at each chunk's start and end) as the token's
        ``(done, total)``: checked as a chunk starts, and told of it when it ends."""
        if cancel is None:
            return None
        total, ended = self.chunks(length), 0

        def callback(info: dict) -> None:
            nonlocal ended
            if info.get("state") != "end":
                cancel.check()
                return
            ended += 1
            cancel.progress_callback(ended, total)
        return callback


def _max_segment(model: Model | BagOfModels) -> float:
    """Longest segment (s) the model accepts: HTDemucs is bound to its training length."""
    if isinstance(model, BagOfModels):
        return model.max_allowed_segment
    return float(getattr(model, "segment", float("inf")))


def _validate_wav(wav: np.ndarray, sample_rate: int) -> torch.Tensor:
    check_positive_int(sample_rate, "sample_rate")
    if not isinstance(wav, np.ndarray):
        raise ValueError(f"audio must be a numpy array, got {type(wav).__name__}")
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2 or wav.shape[0] not in (1, 2):
        raise ValueError(f"audio must be (channels, samples) with 1 or 2 channels, "
                         f"got shape {wav.shape}")
    if wav.shape[1] == 0:
        raise ValueError("audio is empty (0 samples)")
    if not np.isfinite(wav).all():
        raise ValueError("audio contains NaN or infinite samples")
    return torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))


def _to_stereo(mix: torch.Tensor) -> torch.Tensor:
    return mix.expand(2, -1) if mix.shape[0] == 1 else mix


def _load_legacy(path: Path) -> Model:
    try:
        package = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # pickle/zip errors come in many types; all mean "not a checkpoint"
        raise ValueError(f"{path}: not a readable torch checkpoint ({err})") from err
    if not isinstance(package, dict) or any(key not in package for key in _LEGACY_KEYS):
        found = sorted(package) if isinstance(package, dict) else type(package).__name__
        raise ValueError(f"{path}: not a demucs model file; expected keys {list(_LEGACY_KEYS)}, "
                         f"found {found}")
    try:
        return load_model(package)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{path}: demucs state does not fit {package['klass']}: {err}") from err


def _load_safetensors(path: Path) -> Model:
    from demucs.hf import load_safetensors_model
    try:
        return load_safetensors_model(path)
    except Exception as err:  # safetensors header, JSON metadata and state errors alike
        raise ValueError(f"{path}: not a demucs safetensors model ({err})") from err


def _load_bag(path: Path) -> BagOfModels:
    try:
        bag = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML ({err})") from err
    if not isinstance(bag, dict) or not isinstance(bag.get("models"), list) or not bag["models"]:
        raise ValueError(f"{path}: a demucs bag needs a non-empty 'models' list")
    files = [path.parent / f"{sig}.safetensors" for sig in bag["models"]]
    absent = [str(file) for file in files if not file.is_file()]
    if absent:
        raise FileNotFoundError(f"{path}: model files of the bag are missing: {absent}")
    return BagOfModels([_load_safetensors(file) for file in files],
                       bag.get("weights"), bag.get("segment"))
