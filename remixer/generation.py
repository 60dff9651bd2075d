"""MusicGen Chord / Melody generation: parameters, windowed sampling with moving chords, model cache.

A request is a description plus at most one of: chords (read from audio per window, or a text
progression), a melody waveform (stock melody models), and optionally an audio prompt to
continue. :class:`Generator` samples with audiocraft's ``LMModel.generate`` directly, so the
per-step cost is exactly audiocraft's; what it adds is the window loop:

Windows
    Outputs longer than the model's window (``dataset.segment_duration``, 30 s) are sampled in
    windows that start every ``extend_stride`` seconds (0.6 windows = 18 s, audiocraft's value),
    each re-reading the last ``window - stride`` seconds as its prompt; or in the windows of a
    plan (:mod:`remixer.sections`: each window's start, end and description, so that a remix
    follows the song's sections). A window starting at ``s`` gets the chord chroma of
    ``[s, s + window)`` from :mod:`remixer.chords`: the chords read from that window's own audio
    (read before generation, once per window, as the published conditioner did), or the typed
    progression's frames from ``s`` on, so the harmony moves with the music instead of restarting
    (the reference skipped frames approximately for text). Melody waveforms are re-sliced per
    window exactly as audiocraft does.

Seeds
    ``seed=None`` draws a fresh seed, and every result reports the seed it used; 0 is a seed like
    any other. The same seed, inputs and device give the same tokens. Sampling uses torch's
    global generator, so a :class:`ModelCache` serialises the generations of all its models.

Outputs
    :class:`GenerationResult` holds ``float32 (channels, samples)`` audio at the model's rate
    (32 kHz), the seed and the ``(streams, frames)`` tokens (interleaved L/R for stereo models).
"""
from __future__ import annotations

import logging
import secrets
import threading
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from audiocraft.data.audio_utils import convert_audio
from audiocraft.models.genmodel import BaseGenModel
from audiocraft.models.multibanddiffusion import MultiBandDiffusion
from audiocraft.modules.conditioners import ConditioningAttributes, WavCondition

from remixer.audio import check_positive_int
from remixer.cancellation import CancelToken
from remixer.chords import Chords, fit_to_window
from remixer.musicgen.conditioners import CHROMA_ATTRIBUTE, is_chord_model, is_melody_model
from remixer.musicgen.loaders import (load_chord_model, load_encodec, load_mbd, load_melody_model,
                                      load_text_encoder)
from remixer.requests import (CHORD_VERSIONS, MELODY_VERSIONS, SEED_LIMIT, InputError, Sampling,
                              is_number)
from remixer.sections import Window, plan_steps, stride_plan
from remixer.static_decode import StaticDecoder, decoder_from_env, resolve_decoder, unsupported

__all__ = ["GenerationParams", "AudioClip", "GenerationResult", "Generator", "ModelCache"]

EXTEND_RATIO = 0.6

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings of one request.

    Attributes
    ----------
    duration : float
        Output seconds, an audio prompt included.
    top_k : int
        Sample among the k most likely codes (0: no limit).
    top_p : float
        Nucleus sampling mass in (0, 1]; 0 uses ``top_k``.
    temperature : float
        Softmax temperature; 0 is greedy decoding.
    cfg_coef : float
        Classifier-free guidance coefficient.
    seed : int or None
        In ``[0, 2**32)``; None draws one (reported in the result).
    """

    duration: float
    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    cfg_coef: float = 3.0
    seed: tp.Optional[int] = None

    def __post_init__(self) -> None:
        if not is_number(self.duration) or self.duration <= 0:
            raise ValueError(f"duration must be > 0 seconds, got {self.duration!r}")
        # The sampling rules are the client's (one set, in remixer.requests).
        Sampling(top_k=self.top_k, top_p=self.top_p, temperature=self.temperature,
                 classifier_free_guidance=self.cfg_coef, seed=self.seed)

    @classmethod
    def of(cls, sampling: Sampling, duration: float) -> GenerationParams:
        """The settings of a request's :class:`~remixer.requests.Sampling` for ``duration`` seconds."""
        return cls(duration=duration, top_k=sampling.top_k, top_p=sampling.top_p,
                   temperature=sampling.temperature, cfg_coef=sampling.classifier_free_guidance,
                   seed=sampling.seed)


@dataclass(frozen=True)
class AudioClip:
    """A waveform ``(channels, samples)`` and its rate: a melody or a prompt to continue."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples)
        if samples.ndim != 2 or samples.shape[1] == 0:
            raise ValueError(f"audio must be shaped (channels, samples) with samples > 0, "
                             f"got {samples.shape}")
        if not np.isfinite(samples).all():
            raise ValueError("audio holds NaN or infinite samples")
        check_positive_int(self.sample_rate, "sample_rate")

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    def tensor(self, sample_rate: int, channels: int) -> torch.Tensor:
        """``[1, channels, T]`` float32 at ``sample_rate``."""
        wav = torch.from_numpy(np.ascontiguousarray(self.samples, dtype=np.float32))[None]
        return convert_audio(wav, self.sample_rate, sample_rate, channels)


@dataclass(frozen=True)
class GenerationResult:
    """Generated audio ``float32 (channels, samples)``, its rate, the seed used, the tokens."""

    audio: np.ndarray
    sample_rate: int
    seed: int
    tokens: np.ndarray


class Generator:
    """Generates with one loaded MusicGen (chord or melody) model.

    Parameters
    ----------
    model : audiocraft BaseGenModel
        From :func:`~remixer.musicgen.loaders.load_chord_model` / ``load_melody_model``.
    extend_stride : float, optional
        Seconds between window starts for long outputs; default 0.6 windows (18 s of 30 s).
    lock : threading.Lock, optional
        Held while sampling; share one between generators that may run concurrently (the
        LM's streaming state and torch's RNG are not thread-safe).
    decoder : {"audiocraft", "static", "auto"}, optional
        The decoding loop: audiocraft's streaming ``LMModel.generate`` (default), or
        :class:`~remixer.static_decode.StaticDecoder` (a preallocated cache, CUDA graphs on a GPU;
        the same tokens up to float16 rounding); ``auto``: static on CUDA. An LM the static
        decoder does not support keeps audiocraft's, with a warning.
    """

    def __init__(self, model: BaseGenModel, *, extend_stride: tp.Optional[float] = None,
                 lock: tp.Optional[threading.Lock] = None, decoder: str = "audiocraft") -> None:
        self.model = model
        self.extend_stride = EXTEND_RATIO * model.max_duration if extend_stride is None else extend_stride
        if not 0 < self.extend_stride < model.max_duration:
            raise ValueError(f"extend_stride must be in (0, {model.max_duration:g}) s, "
                             f"got {self.extend_stride}")
        self._lock = lock or threading.Lock()
        self._static = self._static_decoder(resolve_decoder(decoder, torch.device(model.device)))

    def _static_decoder(self, decoder: str) -> tp.Optional[StaticDecoder]:
        if decoder == "audiocraft":
            return None
        reason = unsupported(self.model.lm)
        if reason is not None:
            logger.warning("%s: static decoding unsupported (%s); using audiocraft's", self.model.name, reason)
            return None
        return StaticDecoder(self.model.lm)

    @property
    def decoder(self) -> str:
        """The decoding loop in use: ``audiocraft`` or ``static``."""
        return "audiocraft" if self._static is None else "static"

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    @property
    def channels(self) -> int:
        return int(self.model.audio_channels)

    @property
    def window(self) -> float:
        """The model's window in seconds (``dataset.segment_duration``)."""
        return float(self.model.max_duration)

    @property
    def takes_chords(self) -> bool:
        return is_chord_model(self.model)

    @property
    def takes_melody(self) -> bool:
        return is_melody_model(self.model)

    def stride_plan(self, duration: float, description: str) -> tuple[Window, ...]:
        """audiocraft's windows for ``duration`` seconds (:func:`remixer.sections.stride_plan`):
        the plan :meth:`generate` runs when it is given none."""
        return stride_plan(duration, description, window=self.window, stride=self.extend_stride,
                           frame_rate=self.model.frame_rate)

    def generate(self, description: str, params: GenerationParams, *, chords: tp.Optional[Chords] = None,
                 chroma_coefficient: float = 1.0, melody: tp.Optional[AudioClip] = None,
                 prompt: tp.Optional[AudioClip] = None, mbd: tp.Optional[MultiBandDiffusion] = None,
                 plan: tp.Optional[tp.Sequence[Window]] = None,
                 cancel: tp.Optional[CancelToken] = None) -> GenerationResult:
        """Generate ``params.duration`` seconds.

        Parameters
        ----------
        description : str
            Text prompt ("" for none).
        params : GenerationParams
        chords : remixer.chords.TextChords or WindowChords, optional
            Chord models only; None conditions on "no chords" (the null chroma). Window chords
            must hold a reading for every window's start.
        chroma_coefficient : float
            Scales the chord chroma, text and audio alike (reference range 0.5..2.5).
        melody : AudioClip, optional
            Melody models only: the waveform whose chroma the output follows.
        prompt : AudioClip, optional
            Audio to continue; it is the output's first seconds (chords count from its start).
        mbd : MultiBandDiffusion, optional
            Decode with Multi-Band Diffusion instead of EnCodec (mono models only).
        plan : sequence of remixer.sections.Window, optional
            Each window's start, end and description, covering ``params.duration`` (then
            ``description`` is unused; not with ``prompt``). Default: audiocraft's windows every
            ``extend_stride`` seconds, all described by ``description``.
        cancel : CancelToken, optional
            Checked after every decoding step and before every window: a cancel raises
            ``Cancelled`` within one step and releases the sampling lock. Each step also reports
            the frames written so far of the whole output's (``progress_callback(done, total)``).

        Returns
        -------
        GenerationResult
        """
        self._check_request(chords, chroma_coefficient, melody, prompt, mbd)
        frame_rate = self.model.frame_rate
        total_steps = int(params.duration * frame_rate)
        if total_steps < 1:
            raise ValueError(f"duration {params.duration} s is shorter than one codec frame "
                             f"({1 / frame_rate:.3f} s)")
        if plan is None:
            plan = self.stride_plan(params.duration, description)
        elif prompt is not None:
            raise ValueError("a window plan cannot continue an audio prompt")
        spans = plan_steps(plan, frame_rate=frame_rate, total_steps=total_steps,
                           window_steps=int(self.window * frame_rate))
        seed = secrets.randbelow(SEED_LIMIT) if params.seed is None else params.seed
        with self._lock, torch.no_grad():
            prompt_tokens = self._encode_prompt(prompt, total_steps)
            condition = self._condition_maker(params, chords, chroma_coefficient, melody)
            torch.manual_seed(seed)
            tokens = self._sample(condition, prompt_tokens, spans, params, cancel)
            decoder = mbd.tokens_to_wav if mbd is not None else self.model.generate_audio
            audio = decoder(tokens)
        return GenerationResult(audio=audio[0].float().cpu().numpy(), sample_rate=self.sample_rate,
                                seed=seed, tokens=tokens[0].cpu().numpy())

    def _check_request(self, chords: tp.Optional[Chords], coefficient: float, melody: tp.Optional[AudioClip],
                       prompt: tp.Optional[AudioClip], mbd: tp.Optional[MultiBandDiffusion]) -> None:
        name = self.model.name
        if chords is not None and not self.takes_chords:
            raise ValueError(f"model {name!r} does not take chords; use a MusicGen Chord model")
        if melody is not None and not self.takes_melody:
            raise ValueError(f"model {name!r} does not take a melody; use a MusicGen melody model")
        if not is_number(coefficient) or coefficient <= 0:
            raise ValueError(f"chroma_coefficient must be a finite number > 0, got {coefficient!r}")
        if prompt is not None and not isinstance(prompt, AudioClip):
            raise ValueError("prompt must be an AudioClip")
        if mbd is not None and self.channels != 1:
            raise ValueError(f"Multi-Band Diffusion decodes mono models only; {name!r} is stereo")

    def _encode_prompt(self, prompt: tp.Optional[AudioClip], total_steps: int) -> tp.Optional[torch.Tensor]:
        if prompt is None:
            return None
        wav = prompt.tensor(self.sample_rate, self.channels).to(self.model.device)
        tokens, _ = self.model.compression_model.encode(wav)
        limit = min(total_steps - 1, int(self.window * self.model.frame_rate))
        if tokens.shape[-1] > limit:
            raise InputError(f"the audio prompt lasts {prompt.duration:.2f} s; it must be shorter than "
                             f"the output duration and at most the model's {self.window:g} s window")
        return tokens

    def _condition_maker(self, params: GenerationParams, chords: tp.Optional[Chords],
                         coefficient: float, melody: tp.Optional[AudioClip],
                         ) -> tp.Callable[[float, str], ConditioningAttributes]:
        """Conditions of the window starting at ``start`` seconds, described by ``description``."""
        provider = self.model.lm.condition_provider

        def texts(description: str) -> dict[str, str]:
            return {name: description for name in provider.text_conditions}
        if CHROMA_ATTRIBUTE not in provider.conditioners:
            return lambda start, description: ConditioningAttributes(text=texts(description))
        conditioner = provider.conditioners[CHROMA_ATTRIBUTE]
        if self.takes_chords:
            def chord_condition(start: float) -> WavCondition:
                if chords is None:
                    return conditioner.condition(None)
                # The whole window, even past the output's end: the published model saw 30 s of
                # chords in every window (a shorter reading is tiled, as match_len_on_eval did).
                raw = chords.chroma(start=start, duration=self.window)
                chroma = fit_to_window(raw, conditioner.chroma_len)
                return conditioner.condition(torch.from_numpy(chroma) * coefficient)
            make_wav = chord_condition
        else:
            make_wav = self._melody_condition_maker(melody, params)
        return lambda start, description: ConditioningAttributes(text=texts(description),
                                                                 wav={CHROMA_ATTRIBUTE: make_wav(start)})

    def _melody_condition_maker(self, melody: tp.Optional[AudioClip], params: GenerationParams,
                                ) -> tp.Callable[[float], WavCondition]:
        device = self.model.device
        rate = self.sample_rate
        if melody is None:
            null = WavCondition(torch.zeros(1, 1, 1, device=device),
                                torch.zeros(1, dtype=torch.long, device=device), [rate], [None], [None])
            return lambda start: null
        wav = melody.tensor(rate, self.channels).to(device)
        length = wav.shape[-1]
        if params.duration <= self.window:
            whole = WavCondition(wav, torch.tensor([length], device=device), [rate], [None], [None])
            return lambda start: whole
        span = int(self.window * rate)

        def window_melody(start: float) -> WavCondition:
            # audiocraft's extended generation: the window's slice, looping a short melody.
            positions = torch.arange(int(start * rate), int(start * rate) + span, device=device)
            return WavCondition(wav[..., positions % length], torch.tensor([span], device=device),
                                [rate], [None], [0.0])
        return window_melody

    def _sample(self, condition: tp.Callable[[float, str], ConditioningAttributes],
                prompt: tp.Optional[torch.Tensor], spans: tp.Sequence[tuple[int, int, str]],
                params: GenerationParams, cancel: tp.Optional[CancelToken] = None) -> torch.Tensor:
        """audiocraft's ``_generate_tokens`` loop with per-window conditions: the window
        ``(start, end, description)`` re-reads the tokens from ``start`` on and writes up to ``end``."""
        frame_rate = self.model.frame_rate
        # A k beyond the codebook is "no limit" (torch.topk would reject it).
        top_k = min(params.top_k, self.model.lm.card)
        sampling = dict(use_sampling=params.temperature > 0, temp=params.temperature, top_k=top_k,
                        top_p=params.top_p, cfg_coef=params.cfg_coef, two_step_cfg=False)
        generate = self.model.lm.generate if self._static is None else self._static.generate
        tokens = prompt
        first = 0 if prompt is None else prompt.shape[-1]
        for index, (start, end, description) in enumerate(spans):
            if cancel is not None:
                cancel.check()
            attributes = condition(start / frame_rate, description)
            written_so_far = 0 if tokens is None else tokens.shape[-1]
            logger.debug("window %d/%d: %.2f-%.2f s, new from %.2f s: %r", index + 1, len(spans),
                         start / frame_rate, end / frame_rate, written_so_far / frame_rate, description)
            context = None if tokens is None else tokens[..., start:]
            with self.model.autocast:
                written = generate(context, [attributes], max_gen_len=end - start,
                                   callback=_frames_callback(cancel, written_so_far - first,
                                                             end - written_so_far, spans[-1][1] - first),
                                   **sampling)
            tokens = written if tokens is None else torch.cat([tokens[..., :start], written], dim=-1)
        return tokens


def _frames_callback(cancel: tp.Optional[CancelToken], before: int, new: int,
                     total: int) -> tp.Optional[tp.Callable[[int, int], None]]:
    """The decoding loop's per-step callback for a window writing ``new`` frames after
    ``before``: it tells ``cancel`` the frames written of the whole output's ``total``, so that
    progress runs once from 0 to ``total`` over all windows (a window's own count restarts, and
    includes the codebook pattern's extra steps)."""
    if cancel is None:
        return None
    return lambda step, steps: cancel.progress_callback(before + new * step // steps, total)


class ModelCache:
    """Loads each model version once and shares it (and T5, EnCodec, MBD, htdemucs) across requests.

    Parameters
    ----------
    store : remixer.weights.WeightsStore
        Resolves manifest names to local files (raises ``MissingWeightsError`` offline).
    device : str or torch.device, optional
        Default: CUDA when available.
    decoder : {"auto", "audiocraft", "static"}, optional
        Every generator's decoding loop (:class:`Generator`); default: ``$REMIXER_DECODE``,
        else ``auto`` (the static decoder on CUDA, audiocraft's loop on the CPU).

    Thread-safe: loading holds one lock, and all generators share one sampling lock.
    """

    def __init__(self, store: tp.Any, *, device: tp.Union[str, torch.device, None] = None,
                 decoder: tp.Optional[str] = None) -> None:
        self.store = store
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.decoder = resolve_decoder(decoder_from_env() if decoder is None else decoder, self.device)
        self._load_lock = threading.RLock()
        self._sample_lock = threading.Lock()
        self._generators: dict[str, Generator] = {}
        self._shared: dict[str, tp.Any] = {}

    def get(self, version: str) -> Generator:
        """The generator of ``version`` (one of CHORD_VERSIONS or MELODY_VERSIONS)."""
        if version not in CHORD_VERSIONS + MELODY_VERSIONS:
            raise ValueError(f"unknown model version {version!r}; choose one of "
                             f"{', '.join(CHORD_VERSIONS + MELODY_VERSIONS)}")
        with self._load_lock:
            if version not in self._generators:
                self._generators[version] = Generator(self._load(version), lock=self._sample_lock,
                                                      decoder=self.decoder)
            return self._generators[version]

    def add(self, version: str, model: BaseGenModel) -> Generator:
        """Serve ``version`` with an already built chord model (e.g. one built from its config by
        :func:`~remixer.musicgen.builders.build_chord_model`) instead of loading its file."""
        if version not in CHORD_VERSIONS:
            raise ValueError(f"add takes a chord version ({', '.join(CHORD_VERSIONS)}), got {version!r}")
        if not is_chord_model(model):
            raise ValueError(f"the model given for {version!r} does not take chords")
        with self._load_lock:
            if version in self._generators:
                raise ValueError(f"model version {version!r} is already loaded")
            self._generators[version] = Generator(model, lock=self._sample_lock, decoder=self.decoder)
            return self._generators[version]

    def loaded(self) -> list[Generator]:
        """The generators loaded so far (e.g. to warm them up)."""
        with self._load_lock:
            return list(self._generators.values())

    def mbd(self) -> MultiBandDiffusion:
        """The Multi-Band Diffusion decoder (loaded on first use)."""
        return self._once("mbd", lambda: load_mbd(self.store.path("mbd-musicgen-32khz"),
                                                  self.store.path("musicgen-small-codec"),
                                                  device=self.device))

    def _load(self, version: str) -> BaseGenModel:
        # One error naming every missing file of the version, before any of it loads.
        groups = self.store.manifest.groups
        files = ([f"musicgen-{version}"] if version in CHORD_VERSIONS
                 else [f"musicgen-{version}-lm", f"musicgen-{version}-codec", "htdemucs"])
        self.store.require([*files, *groups["t5-base"], *groups["encodec-32khz"]], files=True)
        text_encoder = self._once("t5", lambda: load_text_encoder(self._dir("t5-base"), device=self.device))
        encodec = self._once("encodec", lambda: load_encodec(self._dir("encodec-32khz"), device=self.device))
        if version in CHORD_VERSIONS:
            return load_chord_model(self.store.path(f"musicgen-{version}"), device=self.device,
                                    text_encoder=text_encoder, compression_model=encodec)
        return load_melody_model(self.store.path(f"musicgen-{version}-lm"),
                                 self.store.path(f"musicgen-{version}-codec"),
                                 device=self.device, text_encoder=text_encoder, encodec=encodec,
                                 stem_model=self._once("htdemucs", self._stem_model))

    def _stem_model(self) -> torch.nn.Module:
        from remixer.separation import Separator
        return Separator.from_checkpoint(self.store.path("htdemucs"), self.device).model

    def _dir(self, group: str) -> Path:
        """The directory holding every file of a transformers-layout group (t5-base, encodec-32khz)."""
        return self.store.group_paths(group)[0].parent

    def _once(self, key: str, build: tp.Callable[[], tp.Any]) -> tp.Any:
        with self._load_lock:
            if key not in self._shared:
                self._shared[key] = build()
            return self._shared[key]
