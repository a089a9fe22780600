"""Hub-free tokenizers for the random-weight test models.

The test models must build with no network, so their tokenizers are made in
code: a byte-fallback BPE vocabulary (256 byte tokens plus a few letters) that
can encode any prompt, wrapped in the real transformers tokenizer class the
pipeline expects.
"""

from __future__ import annotations

import string

SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")


def byte_fallback_vocab() -> dict[str, int]:
    """Specials, then lowercase letters and '▁', then one token per byte (<0x00>..<0xFF>)."""
    pieces = list(SPECIAL_TOKENS) + ["▁"] + list(string.ascii_lowercase)
    pieces += [f"<0x{b:02X}>" for b in range(256)]
    return {piece: i for i, piece in enumerate(pieces)}


def tiny_gemma_tokenizer():
    """A `GemmaTokenizer` (the class LTX-2 declares) over `byte_fallback_vocab()`."""
    from transformers import GemmaTokenizer

    return GemmaTokenizer(vocab=byte_fallback_vocab(), merges=[])


def tiny_t5_tokenizer():
    """A fast T5-style tokenizer (what Wan's UMT5 encoder reads) over the same vocabulary."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(vocab=byte_fallback_vocab(), merges=[], unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁")])
    # T5 ends every sequence with </s>; here <eos>.
    eos_id = byte_fallback_vocab()["<eos>"]
    tok.post_processor = processors.TemplateProcessing(single="$A <eos>", special_tokens=[("<eos>", eos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>", bos_token="<bos>"
    )


VOCAB_SIZE = len(byte_fallback_vocab())
