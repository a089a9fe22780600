"""media/: turning arrays into files people can watch, and back.

PUT HERE:
- PyAV encode/decode of MP4 (H.264 + AAC), probing and an upload's limits, reading
  frames back bounded (a range, the tail, resampled, scaled) and audio back.
- Previews made from in-memory frames: WebP thumbnail, JPEG spritesheet.
- Still-image intake for image-to-video: decode/validate uploads, data URLs,
  fit to the output size.
- Array helpers on (T, H, W, 3) uint8 frames and (channels, samples) float32
  audio: stitching clips, fitting audio length to the video; resampling sound (low-pass
  polyphase), level matching and the crossfade over an extension's overlap (audio.py).
- `MediaError` (a ValueError): bad media in, with a message a client may see.

DO NOT PUT HERE:
- HTTP (fastapi), database (sqlalchemy), job state, storage keys: callers pass
  paths, bytes or file objects and decide where results live.
- Model code (torch, diffusers pipelines): the engine hands us numpy arrays.
- Request validation of sizes/seconds/models: that is protocol/ and engine/.
"""

from mutoscope.media.arrays import MediaError, audio_samples_for, fit_audio
from mutoscope.media.audio import matching_gain, overlap_join, resample_audio
from mutoscope.media.encode import encode_mp4
from mutoscope.media.images import decode_data_url, fit_image, load_image
from mutoscope.media.previews import spritesheet_jpeg, thumbnail_webp
from mutoscope.media.probe import (
    InputLimits,
    MediaInfo,
    check_input,
    frame_bytes,
    inspect_upload,
    probe,
    read_audio,
    read_frame,
    read_frames,
    read_frames_at,
)
from mutoscope.media.stitch import blend_join, concat, join

__all__ = [
    "InputLimits",
    "MediaError",
    "MediaInfo",
    "audio_samples_for",
    "blend_join",
    "check_input",
    "concat",
    "decode_data_url",
    "encode_mp4",
    "fit_audio",
    "fit_image",
    "frame_bytes",
    "inspect_upload",
    "join",
    "load_image",
    "matching_gain",
    "overlap_join",
    "probe",
    "read_audio",
    "read_frame",
    "read_frames",
    "read_frames_at",
    "resample_audio",
    "spritesheet_jpeg",
    "thumbnail_webp",
]
