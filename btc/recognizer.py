"""Audio → chord segments with a BTC checkpoint, and their MIREX ``.lab`` / JSON forms.

Differences from the reference pipeline, all deliberate:

* one CQT over the whole song and all 108-frame windows in one batch (not 10 s chunks, batch 1);
* padding only up to the next multiple of 108 frames (the reference adds a whole empty window
  when the length is already a multiple);
* timestamps use the true CQT hop, 2048/22050 ≈ 0.09288 s per frame. The reference's
  10/108 ≈ 0.09259 s only fits its chunked features (108 frames per 10 s chunk, the hop grid
  restarting at every chunk); on one-pass features it would drift early by 0.3 % (0.56 s after
  three minutes). Frame ``k`` is centred on ``k·hop``, so a chord change between frames ``k−1``
  and ``k`` is placed at ``(k − ½)·hop``; the first segment starts at 0 and the last ends at the
  audio's duration;
* frames whose loudest CQT bin is below 1e-3 (digital silence, roughly under −80 dBFS) are ``N``
  whatever the network says, so silence never yields a chord.
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

__all__ = ["ChordRecognizer"]

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

    def recognize(self, wav: np.ndarray, sample_rate: int) -> list[ChordSegment]:
        """Chord segments of a song.

        Parameters
        ----------
        wav : np.ndarray [shape=(samples,) or (channels, samples)]
            Float audio; channels are averaged to mono.
        sample_rate : int

        Returns
        -------
        segments : list of ChordSegment
            Consecutive, non-overlapping, covering 0 … duration; a change of label starts a new
            segment. Silence gives ``[ChordSegment(0, duration, 'N')]``.

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
        indices = self.frame_labels(cqt_features(wav, sample_rate))
        duration = len(wav) / sample_rate
        changes = np.flatnonzero(np.diff(indices)) + 1
        starts = np.concatenate([[0], changes])
        ends = np.concatenate([changes, [len(indices)]])
        return [
            ChordSegment(
                start=0.0 if start == 0 else min((start - 0.5) * FRAME_SECONDS, duration),
                end=duration if end == len(indices) else min((end - 0.5) * FRAME_SECONDS, duration),
                label=self.vocab[indices[start]],
            )
            for start, end in zip(starts.tolist(), ends.tolist())
        ]

    @staticmethod
    def to_lab(segments: Sequence[ChordSegment]) -> str:
        """MIREX ``.lab`` text: one ``start end label`` line per segment, seconds to 3 decimals."""
        return "".join(f"{s.start:.3f} {s.end:.3f} {s.label}\n" for s in segments)

    @staticmethod
    def to_json(segments: Sequence[ChordSegment]) -> str:
        """JSON list of ``{"start", "end", "label"}`` objects."""
        return json.dumps([{"start": s.start, "end": s.end, "label": s.label} for s in segments])
