"""media/: turning arrays into files people can watch, and back.

PUT HERE:
- PyAV encode/decode of MP4 (H.264 + AAC), probing, reading frames/audio back.
- Previews made from in-memory frames: WebP thumbnail, JPEG spritesheet.
- Still-image intake for image-to-video: decode/validate uploads, data URLs,
  fit to the output size.
- Array helpers on (T, H, W, 3) uint8 frames and (channels, samples) float32
  audio: stitching clips, fitting audio length to the video.
- `MediaError` (a ValueError): bad media in, with a message a client may see.

DO NOT PUT HERE:
- HTTP (fastapi), database (sqlalchemy), job state, storage keys: callers pass
  paths, bytes or file objects and decide where results live.
- Model code (torch, diffusers pipelines): the engine hands us numpy arrays.
- Request validation of sizes/seconds/models: that is protocol/ and engine/.
"""

from mutoscope.media.arrays import MediaError, audio_samples_for, fit_audio
from mutoscope.media.encode import encode_mp4
from mutoscope.media.images import decode_data_url, fit_image, load_image
from mutoscope.media.previews import spritesheet_jpeg, thumbnail_webp
from mutoscope.media.probe import MediaInfo, probe, read_audio, read_frame, read_frames
from mutoscope.media.stitch import concat

__all__ = [
    "MediaError",
    "MediaInfo",
    "audio_samples_for",
    "concat",
    "decode_data_url",
    "encode_mp4",
    "fit_audio",
    "fit_image",
    "load_image",
    "probe",
    "read_audio",
    "read_frame",
    "read_frames",
    "spritesheet_jpeg",
    "thumbnail_webp",
]
