"""Random-weight Wan 2.2 TI2V-5B components for the `builtin:` test model, built in code."""

from __future__ import annotations

from typing import Any


def build_tiny_components(seed: int = 0) -> dict[str, Any]:
    """Random-weight Wan 2.2 TI2V-5B-shaped components, built without the hub."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from mutoscope.engine.testkit.tiny_text import VOCAB_SIZE, tiny_t5_tokenizer

    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=VOCAB_SIZE,
            d_model=16,
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
            dropout_rate=0.0,
        )
    )
    # eval() turns dropout off: the same seed must give the same video.
    text_encoder.eval()

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=1,
        z_dim=48,
        in_channels=12,  # 3 colours x 2x2 pixel patch
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=0,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    )

    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=48,
        out_channels=48,
        text_dim=16,
        freq_dim=32,
        ffn_dim=16,
        # Two blocks, as in diffusers' own Wan test model: the first-block cache skips "the rest".
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=64,
    )

    return {
        "tokenizer": tiny_t5_tokenizer(),
        "text_encoder": text_encoder,
        "vae": vae,
        "scheduler": UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0),
        "transformer": transformer,
    }
