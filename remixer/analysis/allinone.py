"""All-In-One beats, downbeats and sections, fed by the pipeline's own htdemucs stems.

All-In-One (Kim & Oh, 2023; the ``allin1`` package) reads a log-filtered spectrogram of each of
the four htdemucs stems. ``allin1`` separates the song itself; here the stems come from
`remixer.separation` (the one separation of the request) and only the network, its published
8-fold Harmonix checkpoints and the feature chain are reused from ``allin1_infer`` (a pure-PyTorch
port that loads the same files).

Features (reference §4.5): each stem, resampled to 44.1 kHz (``remixer.audio.resample``) when
the song has another rate, is quantised exactly like a 16-bit wav written by demucs (``clip='rescale'``) and read back
by madmom as int16 mono, then framed at 100 fps (2048-sample Hann frames), filtered by a
12-band/octave log filterbank (30 Hz-17 kHz, 81 bins) and compressed with ``log10(1 + S)``;
stacked bass, drums, other, vocals -> ``[4, T, 81]`` with ``T = ceil(samples_44k / 441)``.
At 44.1 kHz this is bit-identical to ``allin1_infer``'s own in-memory feature path.

Cost: the network is linear in length, about 3 CPU-seconds per fold per minute of audio (one
core), so the 8-fold ensemble needs ~25 CPU-s per minute; the features ~1.2 s.

Audio without stems (the generated instrumental, which must not be separated again) uses the
whole mix as bass, drums AND other and silence as vocals: an instrumental really has no vocals,
while a silent drum or bass stem would tell the network "no rhythm section", which is exactly
what beat tracking must not be told.

Post-processing (reference §4.7): fold logits are averaged (as ``harmonix-all`` does), beats and
downbeats go through the shared bar-aware DBN of `remixer.beats` with the folds' mean
``best_threshold_downbeat``, and sections come from peak-picked boundary probabilities labelled
with the mean function class of each span.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from madmom_infer.audio.signal import Signal
from omegaconf import OmegaConf


@contextlib.contextmanager
def _keeping_demucs() -> tp.Iterator[None]:
    """Undo ``demucs_infer``'s import-time takeover of the ``demucs`` package name.

    ``allin1_infer`` imports ``demucs_infer``, whose ``compat`` module rebinds
    ``sys.modules['demucs']`` (and ``demucs.htdemucs``, ``demucs.apply``, ...) to itself. Left in
    place, the real htdemucs checkpoint would unpickle into ``demucs_infer`` classes that the real
    ``demucs.apply.apply_model`` no longer recognises, and ``import demucs.states`` anywhere
    later would return the fork.
    """
    before = {name: module for name, module in sys.modules.items()
              if name == "demucs" or name.startswith("demucs.")}
    try:
        yield
    finally:
        for name in [n for n in sys.modules if n == "demucs" or n.startswith("demucs.")]:
            if name in before:
                sys.modules[name] = before[name]
            else:
                del sys.modules[name]


with _keeping_demucs():
    from allin1_infer.config import HARMONIX_LABELS
    from allin1_infer.models.allinone import AllInOne
    from allin1_infer.postprocessing.helpers import local_maxima, peak_picking
    from allin1_infer.spectrogram import build_spec_processor
    from allin1_infer.stems import quantize_stem_to_madmom_mono_int16

from remixer.audio import check_positive_int, resample
from remixer.beats import Beats, Section, TempoPrior, beats_from_activations
from remixer.separation import Stems

if tp.TYPE_CHECKING:
    from remixer.weights import WeightsStore

INPUT_STEMS: tuple[str, ...] = ("bass", "drums", "other", "vocals")
SAMPLE_RATE = 44_100
FOLDS = range(8)
BEATS_PER_BAR = (3, 4)
_BOUNDARY_WINDOW_S = 12


def weight_name(fold: int) -> str:
    """Manifest name of a Harmonix fold checkpoint (see ``weights/manifest.json``)."""
    return f"allinone-harmonix-fold{fold}"


@dataclass(frozen=True, eq=False)
class AllInOneLogits:
    """Fold-averaged network outputs for one song, one value per 100 fps frame.

    Attributes
    ----------
    beat, downbeat, section : np.ndarray [shape=(T,)]
        Logits of a beat, a downbeat and a section boundary.
    function : np.ndarray [shape=(10, T)]
        Logits of the section function, classes in `HARMONIX_LABELS` order.
    """

    beat: np.ndarray
    downbeat: np.ndarray
    section: np.ndarray
    function: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.beat.shape[0]


class AllInOneAnalyzer:
    """The All-In-One network ensemble as a beat `Analyzer` (``name = "allinone"``).

    Parameters
    ----------
    models : sequence of AllInOne
        One loaded network per fold; their logits are averaged.
    device : str or torch.device

    Attributes
    ----------
    threshold_downbeat : float
        Mean of the folds' ``best_threshold_downbeat``: the DBN ignores frames before the first
        and after the last activation above it.
    """

    name = "allinone"
    needs_stems = True  # its network reads the four stems

    def __init__(self, models: tp.Sequence[AllInOne], device: str | torch.device = "cpu") -> None:
        if not models:
            raise ValueError("AllInOneAnalyzer needs at least one fold model")
        cfg = models[0].cfg
        for model in models[1:]:
            for key in ("fps", "hop_size", "sample_rate", "min_hops_per_beat"):
                if model.cfg[key] != cfg[key]:
                    raise ValueError(f"All-In-One folds disagree on {key}: "
                                     f"{model.cfg[key]} vs {cfg[key]}")
        if (cfg.sample_rate != SAMPLE_RATE or cfg.sample_rate % cfg.hop_size
                or cfg.sample_rate / cfg.hop_size != cfg.fps):
            raise ValueError(f"All-In-One config expects {cfg.sample_rate} Hz, hop "
                             f"{cfg.hop_size}, {cfg.fps} fps; only 44100 Hz / 441 / 100 fps "
                             f"features are implemented")
        self.device = torch.device(device)
        self.models = [model.to(self.device).eval() for model in models]
        self.fps = float(cfg.fps)
        self.min_hops_per_beat = int(cfg.min_hops_per_beat)
        self.threshold_downbeat = float(np.mean([m.cfg.best_threshold_downbeat for m in models]))
        # madmom's STFT caches its dtype-scaled window: one chain per analyser, always int16.
        self._spec = build_spec_processor()

    @classmethod
    def from_checkpoints(cls, paths: tp.Iterable[str | Path],
                         device: str | torch.device = "cpu") -> AllInOneAnalyzer:
        """Load ``{'config', 'state_dict'}`` fold files (``harmonix-fold*.pth``) strictly."""
        return cls([load_fold(path) for path in paths], device)

    @classmethod
    def from_weights(cls, weights: WeightsStore | None = None, folds: tp.Iterable[int] = FOLDS,
                     device: str | torch.device = "cpu") -> AllInOneAnalyzer:
        """Load the Harmonix folds from the weights store (all 8 = ``harmonix-all``).

        Raises
        ------
        remixer.weights.WeightsError
            When a fold file is not available (one error names every missing fold).
        """
        from remixer.weights import WeightsStore

        folds = list(folds)
        bad = [fold for fold in folds if not isinstance(fold, int) or fold not in FOLDS]
        if not folds or bad:
            raise ValueError(f"folds must be a non-empty subset of 0..7, got {folds}")
        store = weights if weights is not None else WeightsStore()
        return cls.from_checkpoints(store.require([weight_name(fold) for fold in folds]), device)

    def features(self, wav: np.ndarray, sample_rate: int, stems: Stems | None = None) -> np.ndarray:
        """Network input for a song: ``[4, T, 81]`` float32, stems in `INPUT_STEMS` order.

        Parameters
        ----------
        wav : np.ndarray [shape=(channels, samples)]
            The song (used as bass, drums and other when `stems` is None).
        sample_rate : int
        stems : Stems or None
            Separated stems of this very `wav`.
        """
        _validate(wav, sample_rate, stems)
        if stems is not None:
            return self._spectrograms([stems.as_dict()[name] for name in INPUT_STEMS],
                                      sample_rate)
        (mix,) = self._spectrograms([np.atleast_2d(wav)], sample_rate)
        return np.stack([mix, mix, mix, np.zeros_like(mix)])

    @torch.inference_mode()
    def predict(self, features: np.ndarray) -> AllInOneLogits:
        """Average the folds' logits for ``[4, T, 81]`` features."""
        if features.ndim != 3 or features.shape[0] != len(INPUT_STEMS) or features.shape[1] == 0:
            raise ValueError(f"features must be shaped (4, frames, bins), got {features.shape}")
        x = torch.from_numpy(features).to(self.device)[None]
        outputs = [model(x) for model in self.models]

        def mean(field: str) -> np.ndarray:
            stacked = torch.stack([getattr(out, field)[0] for out in outputs])
            return stacked.mean(0).float().cpu().numpy()

        return AllInOneLogits(beat=mean("logits_beat"), downbeat=mean("logits_downbeat"),
                              section=mean("logits_section"), function=mean("logits_function"))

    def analyze(self, wav: np.ndarray, sample_rate: int, stems: Stems | None = None, *,
                prior: TempoPrior | None = None) -> Beats:
        """Beats, downbeats, tempo and sections of `wav`.

        Parameters
        ----------
        wav : np.ndarray [shape=(channels, samples)]
        sample_rate : int
        stems : Stems or None
            The song's stems from `remixer.separation`; None for audio without vocals (see the
            module doc). This never separates.
        prior : TempoPrior or None
            Tempo range and bar length the DBN may decode (the song's, for its instrumental).
        """
        logits = self.predict(self.features(wav, sample_rate, stems))
        beats = beats_from_activations(beat_activations(logits), self.fps,
                                       beats_per_bar=BEATS_PER_BAR,
                                       threshold=self.threshold_downbeat, prior=prior,
                                       backend=self.name)
        sections = sections_from_logits(logits, self.fps, self.min_hops_per_beat)
        return dataclasses.replace(beats, sections=sections)

    def _spectrograms(self, signals: list[np.ndarray], sample_rate: int) -> np.ndarray:
        """``[len(signals), T, 81]`` spectrograms of (channels, samples) float signals."""
        specs = []
        for signal in signals:
            if sample_rate != SAMPLE_RATE:
                signal = resample(signal, sample_rate, SAMPLE_RATE)
            tensor = torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32))
            mono = quantize_stem_to_madmom_mono_int16(tensor)
            specs.append(np.asarray(self._spec(Signal(mono, sample_rate=SAMPLE_RATE)),
                                    dtype=np.float32))
        return np.stack(specs)


def load_fold(path: str | Path) -> AllInOne:
    """Build one All-In-One fold from its ``{'config', 'state_dict'}`` file, strictly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"All-In-One checkpoint not found: {path}")
    try:
        # The published folds hold only plain dicts and float tensors.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling and zip errors come in many types
        raise ValueError(f"{path}: not a readable All-In-One checkpoint ({err})") from err
    if not isinstance(checkpoint, dict) or not {"config", "state_dict"} <= set(checkpoint):
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path}: expected an All-In-One checkpoint with 'config' and "
                         f"'state_dict', found {found}")
    cfg = OmegaConf.create(checkpoint["config"])
    threshold = cfg.get("best_threshold_downbeat")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ValueError(f"{path}: config.best_threshold_downbeat must be a number, "
                         f"got {threshold!r}")
    try:
        model = AllInOne(cfg)
        model.load_state_dict(checkpoint["state_dict"])
    except Exception as err:  # config typos surface as omegaconf, type or shape errors
        raise ValueError(f"{path}: state_dict does not fit the All-In-One model described by "
                         f"its config: {err}") from err
    return model.eval()


def beat_activations(logits: AllInOneLogits) -> np.ndarray:
    """(any beat, downbeat) probabilities ``[T, 2]`` for `beats_from_activations`.

    All-In-One's decoding (reference §4.7): ``xbeat = max(1e-8, p_b - p_d)``,
    ``no = ((1 - p_b) + (1 - p_d)) / 2``, ``[xbeat, p_d, no]`` normalised to sum 1 per frame;
    the shared decoder takes "any beat" = xbeat + p_d and subtracts p_d back out.
    """
    p_beat = 1.0 / (1.0 + np.exp(-logits.beat.astype(np.float64)))
    p_down = 1.0 / (1.0 + np.exp(-logits.downbeat.astype(np.float64)))
    xbeat = np.maximum(1e-8, p_beat - p_down)
    total = xbeat + p_down + ((1.0 - p_beat) + (1.0 - p_down)) / 2.0
    down = p_down / total
    return np.stack([xbeat / total + down, down], axis=1)


def sections_from_logits(logits: AllInOneLogits, fps: float,
                         min_hops_per_beat: int = 24) -> tuple[Section, ...]:
    """Labelled sections covering the whole song (reference §4.7).

    Boundary probabilities are kept at local maxima within ``4 * min_hops_per_beat + 1`` frames,
    then a frame is a boundary when it is the maximum within 12 s either side and exceeds the
    mean of the means of those two windows. 0 and the duration close the list; each span is
    labelled with the argmax of its mean function probabilities.
    """
    frames = logits.num_frames
    if frames == 0:
        return ()
    prob = torch.sigmoid(torch.from_numpy(logits.section.astype(np.float32)))
    peaks, _ = local_maxima(prob, filter_size=4 * min_hops_per_beat + 1)
    window = int(_BOUNDARY_WINDOW_S * fps)
    starts = np.flatnonzero(peak_picking(peaks.numpy(), window, window) > 0)
    starts = starts[starts > 0]
    shifted = logits.function - logits.function.max(axis=0, keepdims=True)
    functions = np.exp(shifted) / np.exp(shifted).sum(axis=0, keepdims=True)
    edges = np.concatenate([[0], starts, [frames]])
    return tuple(
        Section(start=float(a / fps), end=float(b / fps),
                label=HARMONIX_LABELS[int(functions[:, a:b].mean(axis=1).argmax())])
        for a, b in zip(edges[:-1], edges[1:]))


def _validate(wav: np.ndarray, sample_rate: int, stems: Stems | None) -> None:
    check_positive_int(sample_rate, "sample_rate")
    if not isinstance(wav, np.ndarray) or wav.ndim not in (1, 2) or wav.shape[-1] == 0 \
            or (wav.ndim == 2 and not 1 <= wav.shape[0] <= 2):
        raise ValueError(f"audio must be a non-empty (channels, samples) array with 1 or 2 "
                         f"channels, got {getattr(wav, 'shape', type(wav).__name__)}")
    if not np.isfinite(wav).all():
        raise ValueError("audio contains NaN or infinite samples")
    if stems is not None and (stems.sample_rate != sample_rate
                              or stems.num_samples != wav.shape[-1]):
        raise ValueError(f"stems ({stems.num_samples} samples at {stems.sample_rate} Hz) are not "
                         f"those of this audio ({wav.shape[-1]} samples at {sample_rate} Hz)")
