"""Audio → chord segments with a BTC checkpoint, and their MIREX ``.lab`` / JSON forms.

Chords are read as the published MusicGen Chord conditioner read them (``ChordExtractor``),
frame for frame:

* features on the published 10 s CQT chunk grid (:mod:`btc.features`), each chunk one 108-frame
  BTC window, so the model's context restarts at every chunk;
* a change of label at frame ``k`` starts a segment at ``k · 10/108`` s, the published time
  (the frame's centre is up to 31 ms later within its chunk; the grid restarts every 10 s, so
  nothing drifts); the first segment starts at 0 and the last ends at the audio's duration.

Differences, all deliberate and without effect on the labels: all windows go through the model
in one batch (not one by one), and padding reaches only the next multiple of 108 frames (the
reference adds a whole empty window when the length is already one). Frames whose loudest CQT
bin is below 1e-3 (digital silence, roughly under −80 dBFS) are ``N`` whatever the network says,
so silence never yields a chord.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .features import FRAME_SECONDS, cqt_features
from .labels import VOCAB_25, VOCAB_170, ChordSegment
from .model import BTC

__all__ = ["ChordRecognizer", "frame_segments"]

_VOCABS = {len(VOCAB_25): VOCAB_25, len(VOCAB_170): VOCAB_170}
_SILENT_LOG_MAGNITUDE = float(np.log(1e-3))
# More "channels" than this means the array is almost surely (samples, channels).
_MAX_CHANNELS = 16


def _scalar(value: object, name: str, source: str) -> float:
    try:
        number = float(np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value).item())
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: '{name}' must be a number, got {type(value).__name__}") from error
    return number


class ChordRecognizer:
    """A BTC model with its feature normalisation and vocabulary.

    Parameters
    ----------
    model : BTC
        Its ``config.num_chords`` (25 or 170) selects :data:`~btc.labels.VOCAB_25` or
        :data:`~btc.labels.VOCAB_170`.
    mean, std : float
        Feature normalisation stored in the checkpoint: ``(features − mean) / std``.
    """

    def __init__(self, model: BTC, mean: float, std: float) -> None:
        if model.config.num_chords not in _VOCABS:
            raise ValueError(
                f"BTC with {model.config.num_chords} classes has no vocabulary (known: 25, 170)"
            )
        mean, std = float(mean), float(std)
        if not np.isfinite(mean) or not np.isfinite(std) or std <= 0:
            raise ValueError(f"feature normalisation needs finite mean and std > 0, got {mean}, {std}")
        self.model = model.eval()
        self.mean = mean
        self.std = std
        self.vocab: tuple[str, ...] = _VOCABS[model.config.num_chords]
        self._no_chord = self.vocab.index("N")

    @classmethod
    def from_state_dict(
        cls, state_dict: dict[str, torch.Tensor], mean: float, std: float, device: str = "cpu"
    ) -> "ChordRecognizer":
        """Recognizer from a BTC state dict (sizes inferred, loaded strictly) and its mean/std."""
        return cls(BTC.from_state_dict(state_dict).to(device), mean, std)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str = "cpu", *, weights: dict[str, torch.Tensor] | None = None
    ) -> "ChordRecognizer":
        """Load a published BTC file (``btc_model.pt`` or ``btc_model_large_voca.pt``).

        Parameters
        ----------
        path : str or PathLike
            A torch pickle holding ``{'model': state_dict, 'mean': scalar, 'std': scalar}``.
        device : str
            Where the model runs.
        weights : dict of str to tensor, optional
            A BTC state dict to run instead of the file's ``model``, with the file's ``mean`` and
            ``std``: the copy a MusicGen Chord checkpoint carries, which is what the published
            chord models ran (their ``.th`` holds no normalisation). Checked like the file's own.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is not a readable torch file, lacks ``model``/``mean``/``std``, or its
            state dict differs from the BTC layout (missing/unexpected keys, wrong shapes).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"BTC checkpoint {path} does not exist")
        try:
            # The published files pickle mean/std as numpy scalars, which weights_only refuses.
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # torch/pickle raise many types for a damaged file
            raise ValueError(f"BTC checkpoint {path} is not a readable torch file: {error}") from error
        if not isinstance(checkpoint, dict) or not {"model", "mean", "std"} <= checkpoint.keys():
            found = sorted(map(str, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
            raise ValueError(f"BTC checkpoint {path} must hold 'model', 'mean' and 'std'; found {found}")
        if not isinstance(checkpoint["model"], dict):
            raise ValueError(f"BTC checkpoint {path}: 'model' is not a state dict")
        source = f"BTC checkpoint {path}"
        mean = _scalar(checkpoint["mean"], "mean", source)
        std = _scalar(checkpoint["std"], "std", source)
        try:
            return cls(BTC.from_state_dict(checkpoint["model"] if weights is None else weights).to(device),
                       mean, std)
        except ValueError as error:
            raise ValueError(f"{source if weights is None else 'the BTC weights given'}: {error}") from None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def frame_labels(self, features: np.ndarray) -> np.ndarray:
        """Vocabulary index of every frame of CQT features.

        Parameters
        ----------
        features : np.ndarray [shape=(frames, 144)]
            Output of :func:`~btc.features.cqt_features`.

        Returns
        -------
        indices : np.ndarray [shape=(frames,), dtype=int64]
            Indices into :attr:`vocab`; silent frames are ``N``.
        """
        features = np.asarray(features, dtype=np.float32)
        width, window = self.model.config.feature_size, self.model.config.timestep
        if features.ndim != 2 or features.shape[1] != width or len(features) == 0:
            raise ValueError(f"features must be shaped (frames >= 1, {width}), got {features.shape}")
        if not np.isfinite(features).all():
            raise ValueError("features contain NaN/Inf values")
        frames = len(features)
        normalized = np.zeros((-(-frames // window) * window, width), dtype=np.float32)
        normalized[:frames] = (features - self.mean) / self.std
        batch = torch.from_numpy(normalized).view(-1, window, width).to(self.device)
        with torch.inference_mode():
            indices = self.model(batch).argmax(-1).flatten()[:frames].cpu().numpy()
        indices[features.max(axis=1) < _SILENT_LOG_MAGNITUDE] = self._no_chord
        return indices

    def read(self, wav: np.ndarray, sample_rate: int) -> tuple[str, ...]:
        """The chord label of every feature frame of a song, frame ``k`` labelled at
        ``k · btc.features.FRAME_SECONDS`` s as published (see :func:`frame_segments`).

        Parameters
        ----------
        wav : np.ndarray [shape=(samples,) or (channels, samples)]
            Float audio; channels are averaged to mono.
        sample_rate : int

        Raises
        ------
        ValueError
            Empty, NaN/Inf, non-float audio, or an array that is not (channels, samples).
        """
        wav = np.asarray(wav)
        if not np.issubdtype(wav.dtype, np.floating):
            raise ValueError(f"audio must be float samples in [-1, 1], got dtype {wav.dtype}")
        if wav.ndim == 2:
            if wav.shape[0] > _MAX_CHANNELS:
                raise ValueError(
                    f"audio must be shaped (channels, samples), got {wav.shape} (transposed?)"
                )
            if wav.shape[0] == 0:
                raise ValueError(f"audio has no channels: shape {wav.shape}")
            wav = wav.mean(axis=0)
        elif wav.ndim != 1:
            raise ValueError(f"audio must be shaped (samples,) or (channels, samples), got {wav.shape}")
        return tuple(self.vocab[i] for i in self.frame_labels(cqt_features(wav, sample_rate)))

    def recognize(self, wav: np.ndarray, sample_rate: int) -> list[ChordSegment]:
        """Chord segments of a song (:meth:`read`, then :func:`frame_segments`).

        Returns
        -------
        segments : list of ChordSegment
            Consecutive, non-overlapping, covering 0 … duration; a change of label starts a new
            segment. Silence gives ``[ChordSegment(0, duration, 'N')]``.
        """
        duration = np.shape(wav)[-1] / sample_rate
        return frame_segments(self.read(wav, sample_rate), end=duration)

    @staticmethod
    def to_lab(segments: Sequence[ChordSegment]) -> str:
        """MIREX ``.lab`` text: one ``start end label`` line per segment, seconds to 3 decimals."""
        return "".join(f"{s.start:.3f} {s.end:.3f} {s.label}\n" for s in segments)

    @staticmethod
    def to_json(segments: Sequence[ChordSegment]) -> str:
        """JSON list of ``{"start", "end", "label"}`` objects."""
        return json.dumps([{"start": s.start, "end": s.end, "label": s.label} for s in segments])


def frame_segments(labels: Sequence[str], end: float) -> list[ChordSegment]:
    """Segments of per-frame labels, timed as the published reading times them.

    A change of label at frame ``k`` starts a segment at ``k · FRAME_SECONDS``
    (``time_unit * (n_timestep * t + i)`` in the published ``ChordExtractor.forward``); the
    first starts at 0 and the last ends at ``end`` (the published lines end after the last frame,
    ``len(labels) · FRAME_SECONDS``; a song's duration is at most that).

    Raises
    ------
    ValueError
        No labels, or ``end`` before the last change.
    """
    if not labels:
        raise ValueError("no frames to make chord segments of")
    changes = [k for k in range(1, len(labels)) if labels[k] != labels[k - 1]]
    starts = [0.0, *(k * FRAME_SECONDS for k in changes)]
    if end < starts[-1] - 1e-6:
        raise ValueError(f"segments cannot end at {end} s, before the last change at {starts[-1]:.3f} s")
    bounds = [*starts, max(end, starts[-1])]
    firsts = [0, *changes]
    return [ChordSegment(bounds[i], bounds[i + 1], labels[firsts[i]]) for i in range(len(firsts))]
