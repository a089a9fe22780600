"""Random-weight LTX-2 and LTX-2.5 components for the `builtin:` test models, built in code.

The real classes at a tiny size, with the rules the real model imposes kept (see families/ltx2.py): the
video VAE compresses 32x in space and 8x in time, the audio VAE works on 16 kHz mel frames.
"""

from __future__ import annotations

from typing import Any


# The tiny LTX-2 and LTX-2.5 components share one shape: 8 latent channels, 2-head attention, one layer.
_TINY_TRANSFORMER = dict(
    in_channels=8,
    out_channels=8,
    patch_size=1,
    patch_size_t=1,
    num_attention_heads=2,
    attention_head_dim=8,
    cross_attention_dim=16,
    audio_in_channels=8,  # audio latent channels (2) x latent mel bins (16 / 4)
    audio_out_channels=8,
    audio_num_attention_heads=2,
    audio_attention_head_dim=4,
    audio_cross_attention_dim=8,
    num_layers=1,
    qk_norm="rms_norm_across_heads",
    rope_double_precision=False,
    rope_type="split",
)
_TINY_CONNECTORS = dict(
    video_connector_num_attention_heads=2,
    video_connector_attention_head_dim=8,
    video_connector_num_layers=1,
    video_connector_num_learnable_registers=None,
    audio_connector_num_attention_heads=2,
    audio_connector_num_layers=1,
    audio_connector_num_learnable_registers=None,
    connector_rope_base_seq_len=32,
    rope_theta=10000.0,
    rope_double_precision=False,
    causal_temporal_positioning=False,
    rope_type="split",
)


def build_tiny_components(seed: int = 0) -> dict[str, Any]:
    """Random-weight LTX-2 components, small enough for a 2-core CPU, built without the hub.

    Widths are a handful of channels and every stack is 1-2 layers deep, but the
    shapes that matter to callers are real: 32x/8x video compression, 24 kHz
    stereo audio whose length follows the frame count.
    """
    import torch
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    from mutoscope.engine.testkit.tiny_text import VOCAB_SIZE, tiny_gemma_tokenizer

    text_config = {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 8,
        "max_position_embeddings": 2048,
        "sliding_window": 64,
        "layer_types": ["sliding_attention", "full_attention"],
    }
    # Gemma3ForConditionalGeneration carries a vision tower; the pipeline never
    # feeds it images, so a 1-layer 16x16 SigLIP is enough to make it a valid model.
    vision_config = {
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 16,
        "patch_size": 8,
    }
    torch.manual_seed(seed)
    text_encoder = Gemma3ForConditionalGeneration(
        Gemma3Config(
            text_config=text_config,
            vision_config=vision_config,
            mm_tokens_per_image=4,
            boi_token_index=1,
            eoi_token_index=1,
            image_token_index=3,
        )
    )
    # eval() turns dropout off: the same seed must give the same video.
    text_encoder.eval()
    hidden = text_config["hidden_size"]

    torch.manual_seed(seed)
    transformer = LTX2VideoTransformer3DModel(**_TINY_TRANSFORMER, caption_channels=hidden)

    torch.manual_seed(seed)
    connectors = LTX2TextConnectors(
        **_TINY_CONNECTORS,
        caption_channels=hidden,
        text_proj_in_factor=text_config["num_hidden_layers"] + 1,  # every hidden state, embeddings included
        audio_connector_attention_head_dim=8,
    )

    torch.manual_seed(seed)
    # Three spatiotemporal (2x, 2x, 2x) stages after a 4x4 patchify: 32x in space,
    # 8x in time, like the real VAE. The decoder narrows to 1 channel at full
    # resolution because that last stage dominates the CPU time of a 720p decode.
    vae = AutoencoderKLLTX2Video(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8),
        down_block_types=("LTX2VideoDownBlock3D",) * 3,
        decoder_block_out_channels=(1, 2, 4),
        layers_per_block=(1, 1, 1, 1),
        decoder_layers_per_block=(1, 0, 0, 0),
        spatio_temporal_scaling=(True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False,) * 4,
        downsample_type=("spatiotemporal",) * 3,
        upsample_type=("spatiotemporal",) * 3,
        upsample_residual=(False,) * 3,
        upsample_factor=(1, 1, 1),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    assert (vae.spatial_compression_ratio, vae.temporal_compression_ratio) == (32, 8)

    torch.manual_seed(seed)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=8,  # must equal latent_channels x latent mel bins (2 x 4): the latent statistics are that wide
        output_channels=2,
        ch_mult=(1, 1, 1),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=16,
    )

    torch.manual_seed(seed)
    vocoder = LTX2Vocoder(
        in_channels=2 * 16,  # stereo x mel bins
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[12, 10, 4, 4, 4],
        upsample_factors=[6, 5, 2, 2, 2],  # 240x: 100 mel frames/s -> 24 kHz, as in the real vocoder
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=24000,
    )

    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "vae": vae,
        "audio_vae": audio_vae,
        "text_encoder": text_encoder,
        "tokenizer": tiny_gemma_tokenizer(),
        "connectors": connectors,
        "transformer": transformer,
        "vocoder": vocoder,
    }


def build_tiny_ltx25_components(seed: int = 0) -> dict[str, Any]:
    """The tiny LTX-2 components rebuilt the way LTX-2.5 differs from LTX-2.0, with the same classes.

    What `Lightricks/LTX-2.5-Diffusers` changes, kept at toy width: a Gemma 4 text encoder
    (`Gemma4UnifiedForConditionalGeneration`, text only; its vision and audio towers are optional and
    the pipeline never feeds them), the LTX-2.3 block design (gated attention, cross-attention
    modulation, connectors that project each modality themselves) without the video feed-forward
    biases and with the keyframe position embedding, and the duration head. The VAEs and vocoder are
    LTX-2.3's in the real checkpoint too; the tiny vocoder stays the plain `LTX2Vocoder` (the
    bandwidth-extension stage would double the audio work on a 2-core CPU and changes no shape the
    engine reads).
    """
    import torch
    from diffusers import LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2 import LTX2DurationHead, LTX2TextConnectors
    from transformers import Gemma4UnifiedConfig, Gemma4UnifiedForConditionalGeneration

    from mutoscope.engine.testkit.tiny_text import VOCAB_SIZE

    components = build_tiny_components(seed)
    layers = 2
    text_config = {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 8,
        "global_head_dim": 8,  # the full-attention layers' head size (512 in the real model)
        "max_position_embeddings": 2048,
        "sliding_window": 64,
        "layer_types": ["sliding_attention", "full_attention"],
    }
    # Special-token ids inside the tiny vocabulary (the defaults are beyond it); never produced by a prompt.
    specials = {k: 3 for k in ("image_token_id", "video_token_id", "audio_token_id")}
    specials.update({k: 1 for k in ("boi_token_id", "eoi_token_id", "boa_token_id", "eoa_token_index")})
    torch.manual_seed(seed)
    text_encoder = Gemma4UnifiedForConditionalGeneration(
        Gemma4UnifiedConfig(text_config=text_config, vision_config=None, audio_config=None, **specials)
    ).eval()

    torch.manual_seed(seed)
    transformer = LTX2VideoTransformer3DModel(
        **_TINY_TRANSFORMER,
        caption_channels=16,
        gated_attn=True,
        cross_attn_mod=True,
        audio_gated_attn=True,
        audio_cross_attn_mod=True,
        use_prompt_embeddings=False,
        perturbed_attn=True,
        ff_bias=False,
        use_keyframes_abs_pos_embedding=True,
    )

    torch.manual_seed(seed)
    connectors = LTX2TextConnectors(
        **_TINY_CONNECTORS,
        caption_channels=text_config["hidden_size"],
        text_proj_in_factor=layers + 1,  # the converter's rule for 2.5: the encoder's layers + its embeddings
        audio_connector_attention_head_dim=4,
        video_gated_attn=True,
        audio_gated_attn=True,
        per_modality_projections=True,
        video_hidden_dim=16,  # = the transformer's cross_attention_dim
        audio_hidden_dim=8,  # = its audio_cross_attention_dim
        proj_bias=True,
    )

    torch.manual_seed(seed)
    duration_head = LTX2DurationHead(video_cross_attention_dim=16, audio_cross_attention_dim=8, pooler_hidden_dim=8,
                                     num_queries=1, num_pooler_heads=2, mlp_hidden_dim=8).eval()
    components.update(text_encoder=text_encoder, transformer=transformer, connectors=connectors,
                      duration_head=duration_head)
    return components


def build_tiny_upsampler(seed: int = 0) -> Any:
    """A random-weight `LTX2LatentUpsamplerModel` for the tiny components' 8 latent channels.

    The real upsampler's structure (3D ResBlocks, the rational 2x spatial resampler), one block per
    stage and 32 channels (its GroupNorms have 32 groups, so that is the narrowest it can be).
    """
    import torch
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    torch.manual_seed(seed)
    upsampler = LTX2LatentUpsamplerModel(
        in_channels=8,
        mid_channels=32,
        num_blocks_per_stage=1,
        dims=3,
        spatial_upsample=True,
        temporal_upsample=False,
        rational_spatial_scale=2.0,
        use_rational_resampler=True,
    )
    return upsampler.eval()
