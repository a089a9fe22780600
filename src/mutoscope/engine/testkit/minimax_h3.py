"""A random-weight MiniMax-H3 (`builtin:tiny-minimax-h3`), for tests only.

Every component is the real diffusers / transformers class, at toy width: the transformer, the video
VAE (16x spatial, 17n+5 frames), the stereo 32 kHz audio VAE, and a Qwen3-VL conditioner with the 51
decoder layers the pipeline needs to read `hidden_states[50]` (each 16 wide). The tokenizer is the
byte-fallback vocabulary of `testkit/tiny_text.py` plus Qwen's vision tokens, so every prompt and every
`<Picture i>` label encodes without the hub.
"""

from __future__ import annotations

from typing import Any

# The canvas of the tiny model: generating at 64 px keeps a 5 s job to seconds on a CPU.
TINY_CANVAS = {"canvas_short_edge": 64, "canvas_max_pixels": 64 * 128, "reference_image_short_edge": 64}
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")


def tiny_qwen_tokenizer() -> Any:
    """A `Qwen2TokenizerFast` over the byte-fallback vocabulary, with Qwen's vision tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    from mutoscope.engine.testkit.tiny_text import byte_fallback_vocab

    tok = Tokenizer(models.BPE(vocab=byte_fallback_vocab(), merges=[], unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁")])
    return Qwen2TokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<|endoftext|>",
                              eos_token="<|endoftext|>", additional_special_tokens=list(VISION_TOKENS))


def tiny_processor(tokenizer: Any) -> Any:
    """A `Qwen3VLProcessor` with the PIL image processor and no video processor.

    The video processor needs torchvision, which is not installed here; the tiny model conditions on
    image and audio references only (a character's clip reaches it as its frame and its sound).
    """
    from transformers import Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    class _ImagesOnlyProcessor(Qwen3VLProcessor):
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    images = Qwen2VLImageProcessorPil(patch_size=16, temporal_patch_size=2, merge_size=2,
                                      min_pixels=32 * 32, max_pixels=64 * 64)
    return _ImagesOnlyProcessor(image_processor=images, tokenizer=tokenizer, video_processor=None, chat_template="")


def build_tiny_components(seed: int = 0) -> dict[str, Any]:
    import torch
    from diffusers import (
        AutoencoderKLMiniMaxH3,
        AutoencoderKLMiniMaxH3Audio,
        MiniMaxH3Scheduler,
        MiniMaxH3Transformer3DModel,
    )
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    tokenizer = tiny_qwen_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS}
    config = Qwen3VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32,
                     "num_hidden_layers": 51, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]}},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2, "patch_size": 16,
                       "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 16,
                       "num_position_embeddings": 16, "deepstack_visual_indexes": [0]},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    text_encoder = Qwen3VLForConditionalGeneration(config).eval()
    torch.manual_seed(seed)
    # 6 x rope_freq_dim rotary channels must fit a head (96 of 128 in the real model; 12 of 12 here).
    transformer = MiniMaxH3Transformer3DModel(
        num_attention_heads=2, attention_head_dim=12, hidden_size=24, num_layers=1, num_refiner_layers=1,
        ffn_dim=32, in_channels=4, audio_in_channels=4, text_dim=16, freq_dim=16, time_embed_hidden_dim=16,
        time_embed_dim=8, rope_freq_dim=2,
    ).eval()
    torch.manual_seed(seed)
    vae = AutoencoderKLMiniMaxH3(
        latent_channels=4, block_out_channels=(8,) * 6, layers_per_block=1, norm_num_groups=4, decoder_num_layers=1,
        decoder_num_attention_heads=2, decoder_attention_head_dim=8, decoder_num_register_tokens=1,
        latents_mean=(0.0,) * 4, latents_std=(1.0,) * 4,
    ).eval()
    torch.manual_seed(seed)
    # decoder_dim halves at each of the 7 upsampling stages, so 128 is the narrowest that stays whole.
    audio_vae = AutoencoderKLMiniMaxH3Audio(
        encoder_dim=4, latent_dim=16, latent_channels=4, num_attention_heads=2, decoder_dim=128,
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),), latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    ).eval()
    return {
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "processor": tiny_processor(tokenizer),
        "vae": vae,
        "audio_vae": audio_vae,
        "scheduler": MiniMaxH3Scheduler(shift=12.0),
        "audio_scheduler": MiniMaxH3Scheduler(shift=3.0),
        # One transformer for both checkpoint partitions: the tiny model has no separate ref2va weights.
        "transformer": transformer,
        "transformer_ref": transformer,
    }
