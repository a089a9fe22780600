"""LTX-2 sound that continues: a waveform into the audio VAE's latents, and a denoise that keeps given latents.

PUT HERE: the mel front end the LTX-2 audio VAE was trained on, encoding a waveform to its latents, and the
carry-over of clean audio latents into a generation (`carry_scheduler`), which extensions and continuous
storyboard shots use over their overlap. Audio-to-video encodes its soundtrack with the same encoder and holds
it clean with a pre-hook on the transformer instead (families/ltx2.py `audio_conditioned_call`).
DO NOT PUT HERE: which frames overlap or how clips are joined (the engine and media/stitch.py).

The carry-over is RePaint's replacement (Lugmayr et al., 2022) on the flow-matching path: after every
denoising step, the carried tokens of the audio latents are set to the clean latents noised to the level
the step has just reached, `(1 - sigma) * clean + sigma * noise`, with one fixed noise draw. The model thus
sees, at every step, the previous sound at the right noise level beside the part it is making, and the
new part is denoised to agree with it. diffusers' LTX-2 pipelines give the audio stream one timestep for
the whole clip (`audio_timestep` is per batch), so conditioning carried tokens by their own timestep, as
the video stream's conditioning mask does, is not available through them.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

# The STFT the LTX-2 audio VAE's mel spectrograms are made with (ltx-core `model/audio_vae` AudioProcessor:
# n_fft 1024, Hann window of n_fft, centred with reflection, magnitude (power 1), Slaney mel scale and
# norm from 0 Hz to Nyquist, natural log clamped at 1e-5). The sample rate, hop and mel bins are the
# audio VAE config's own (16 kHz, 160, 64 in the real checkpoints).
N_FFT = 1024
LOG_FLOOR = 1e-5


def waveform_to_mel(audio: "np.ndarray", sample_rate: int, *, target_rate: int, hop: int, mel_bins: int,
                    channels: int) -> "torch.Tensor":
    """(channels, samples) float audio -> (1, channels, frames, mel_bins) log-mel, as the audio VAE takes it.

    Resampled to `target_rate` with a low-pass polyphase filter (media `resample_audio`); mono is repeated
    to the VAE's channel count, extra channels are averaged down to it."""
    import numpy as np
    import torch
    from transformers.audio_utils import mel_filter_bank

    from mutoscope.media import resample_audio

    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    audio = resample_audio(audio, sample_rate, target_rate)
    if audio.shape[0] != channels:
        audio = np.repeat(audio.mean(axis=0, keepdims=True), channels, axis=0)
    wave = torch.from_numpy(np.ascontiguousarray(audio))
    n_fft = N_FFT
    if wave.shape[-1] <= n_fft // 2:  # reflection padding needs more samples than half a window
        wave = torch.nn.functional.pad(wave, (0, n_fft // 2 + 1 - wave.shape[-1]))
    spec = torch.stft(wave, n_fft=n_fft, hop_length=hop, win_length=n_fft, window=torch.hann_window(n_fft),
                      center=True, pad_mode="reflect", return_complex=True).abs()  # (C, n_fft/2 + 1, T)
    bank = torch.from_numpy(mel_filter_bank(n_fft // 2 + 1, mel_bins, 0.0, target_rate / 2, target_rate,
                                            norm="slaney", mel_scale="slaney")).float()  # (freqs, mels)
    mel = torch.einsum("cft,fm->ctm", spec, bank)
    return torch.log(mel.clamp(min=LOG_FLOOR)).unsqueeze(0)


def encode_waveform(pipe: Any, audio: "np.ndarray", sample_rate: int) -> "torch.Tensor":
    """A waveform's LTX-2 audio latents (1, C, L, M), denormalized like a pipeline's `audio_latents` input
    (what `output_type="latent"` returns), at 25 latent frames a second in the real model."""
    import torch

    vae = pipe.audio_vae
    mel = waveform_to_mel(audio, sample_rate, target_rate=int(pipe.audio_sampling_rate), hop=int(pipe.audio_hop_length),
                          mel_bins=int(vae.config.mel_bins), channels=int(vae.config.in_channels))
    # The pipeline's execution device, not the VAE's parameters': under model offload those sit on the CPU
    # until the encode's hook moves the module, and that hook does not move its input.
    with torch.no_grad():
        return vae.encode(mel.to(device=pipe._execution_device, dtype=vae.dtype)).latent_dist.mode()


def carry_scheduler(scheduler: Any, clean: "torch.Tensor", keep: "torch.Tensor",
                    generator: "torch.Generator | None" = None) -> Any:
    """A copy of `scheduler` whose every step puts the kept tokens back on the path of `clean`.

    clean: packed, normalized audio latents (B, S, D) as the pipeline denoises them (S tokens, the
        whole clip; only the kept ones are read).
    keep: (S,) in [0, 1]: 1 where the token is carried (the overlap, or everything for audio-to-video),
        0 where the model makes it; values between blend.
    The copy goes where the pipeline looks for its audio scheduler (`LTX2ConditionPipeline.audio_scheduler`),
    so only the audio stream is changed; the video keeps its own scheduler.
    """
    import torch

    sched = copy.deepcopy(scheduler)
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32).to(clean.device)
    clean = clean.float()
    mask = keep.float().to(clean.device).view(1, -1, 1)
    plain_step = sched.step

    def step(model_output, timestep, sample, *args, **kwargs):
        out = plain_step(model_output, timestep, sample, *args, **kwargs)
        prev = out[0] if isinstance(out, tuple) else out.prev_sample
        # step() has moved step_index on: sigmas[step_index] is the level `prev` is at.
        sigma = float(sched.sigmas[sched.step_index])
        target = ((1.0 - sigma) * clean + sigma * noise).to(prev.dtype)
        prev = prev * (1 - mask.to(prev.dtype)) + target * mask.to(prev.dtype)
        if isinstance(out, tuple):
            return (prev, *out[1:])
        out.prev_sample = prev
        return out

    sched.step = step
    return sched


def overlap_mask(tokens: int, carried: int) -> "torch.Tensor":
    """(tokens,) mask keeping the first `carried` tokens (an extension's overlap leads the clip)."""
    import torch

    keep = torch.zeros(tokens)
    keep[: max(0, min(tokens, carried))] = 1.0
    return keep


def packed_clean(pipe: Any, latents: "torch.Tensor", tokens: int) -> tuple["torch.Tensor", int]:
    """(B, C, L, M) denormalized latents -> ((B, tokens, C*M) packed and normalized as the pipeline denoises
    them, zero past L; how many leading tokens hold real latents)."""
    import torch

    vae = pipe.audio_vae
    packed = pipe._pack_audio_latents(latents.float())
    packed = pipe._normalize_audio_latents(packed, vae.latents_mean.float(), vae.latents_std.float())
    have = min(tokens, packed.shape[1])
    out = torch.zeros((packed.shape[0], tokens, packed.shape[2]), dtype=packed.dtype, device=packed.device)
    out[:, :have] = packed[:, :have]
    return out, have
