"""Tiny random-weight checkpoints of the GPU models' architectures, built with the real libraries.

Run with a model env's own interpreter (it imports torch, tokenizers and that
env's transformers)::

    ENV_PYTHON tiny_models.py mineru OUT_DIR     # Qwen2-VL, MinerU2.5's architecture
    ENV_PYTHON tiny_models.py hunyuan OUT_DIR    # hunyuan_vl (transformers >= 5.13)

OUT_DIR then holds what ``from_pretrained`` reads (config.json,
model.safetensors, tokenizer, image processor, chat template), a few MB.

The weights are random, except that the last norm before the LM head is zero:
every logit is then 0 and greedy decoding picks the lowest allowed token id.
Token 0 is a whole layout line (a box and the type ``text``, as MinerU2.5
writes them) and token 1 is the end of the answer. mineru-vl-utils generates
with ``no_repeat_ngram_size=100``, so its answers are that line 100 times, then
the end: the layout pass finds a text block and the content pass runs on it.
Everything else (vision tower, merger, multimodal RoPE, decoder layers)
computes on random weights of the real shapes.
"""

import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

# Token 0 of both vocabularies: one layout line in MinerU2.5's output syntax.
LAYOUT_LINE = "<|box_start|>100 100 900 400<|box_end|><|ref_start|>text<|ref_end|><|rotate_up|>\n"
SEED = 1234


def byte_level_vocab(first: str, eos: str) -> dict:
    """``first`` at id 0, ``eos`` at id 1, then the 256 byte-level symbols (no merges): any text encodes."""
    symbols = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"".join(_byte_symbol(b) for b in first.encode("utf-8")): 0, eos: 1}
    for symbol in sorted(symbols):
        vocab.setdefault(symbol, len(vocab))
    return vocab


def _byte_symbol(b: int) -> str:
    """GPT-2's byte → printable character map (what ByteLevel uses)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    if b in printable:
        return chr(b)
    extra = [x for x in range(256) if x not in printable]
    return chr(256 + extra.index(b))


def byte_level_tokenizer(special: list, eos: str) -> Tokenizer:
    tok = Tokenizer(models.BPE(vocab=byte_level_vocab(LAYOUT_LINE, eos), merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(special)
    return tok


def zero_final_norm(model) -> None:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("language_model.norm.weight") or name == "model.norm.weight":
                param.zero_()
                return
    raise RuntimeError("no final norm found in %s" % type(model).__name__)


# -- MinerU2.5: Qwen2-VL ---------------------------------------------------------

QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
QWEN_CHAT = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def build_mineru(out: Path) -> dict:
    from transformers import (PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor)

    tok = PreTrainedTokenizerFast(tokenizer_object=byte_level_tokenizer(QWEN_SPECIAL, "<|im_end|>"),
                                  eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 1024,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "tie_word_embeddings": True, "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
            "bos_token_id": None},
        vision_config={"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True)
    torch.manual_seed(SEED)
    model = Qwen2VLForConditionalGeneration(config).eval()
    zero_final_norm(model)
    # 28 px per merged token: a page becomes at most 64 image tokens.
    images = Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64, patch_size=14, merge_size=2,
                                   temporal_patch_size=2)
    processor = Qwen2VLProcessor(image_processor=images, tokenizer=tok, video_processor=Qwen2VLVideoProcessor(),
                                 chat_template=QWEN_CHAT)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return {"architecture": "Qwen2VLForConditionalGeneration", "parameters": model.num_parameters()}


# -- HunyuanOCR: hunyuan_vl ------------------------------------------------------

HY_SPECIAL = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "image_token": "<image_pad>",
              "image_start_token": "<image_start>", "image_end_token": "<image_end>"}
HY_CHAT = (
    "{% for message in messages %}<s>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image_start><image_pad><image_end>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


def build_hunyuan(out: Path) -> dict:
    import transformers
    from transformers import PreTrainedTokenizerFast

    special = list(HY_SPECIAL.values()) + ["<image_newline>"]
    tok = PreTrainedTokenizerFast(
        tokenizer_object=byte_level_tokenizer(special, "</s>"),
        pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        extra_special_tokens={k: v for k, v in HY_SPECIAL.items() if k.startswith("image")})
    ids = {t: tok.convert_tokens_to_ids(t) for t in special}
    config = transformers.HunYuanVLConfig(
        text_config={
            "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 1024,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 2, 2, 2]},
            "pad_token_id": ids["<pad>"], "bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"],
            "eod_token_id": ids["</s>"], "sep_token_id": ids["<pad>"]},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 2,
                       "patch_size": 16, "spatial_merge_size": 2, "max_image_size": 512, "min_image_size": 64,
                       "img_max_token_num": 256},
        image_token_id=ids["<image_pad>"], im_start_id=ids["<image_start>"], im_end_id=ids["<image_end>"],
        im_newline_id=ids["<image_newline>"])
    torch.manual_seed(SEED)
    model = transformers.HunYuanVLForConditionalGeneration(config).eval()
    zero_final_norm(model)
    images = transformers.HunYuanVLImageProcessor(min_pixels=32 * 32 * 4, max_pixels=32 * 32 * 256)
    processor = transformers.HunYuanVLProcessor(image_processor=images, tokenizer=tok, chat_template=HY_CHAT)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return {"architecture": "HunYuanVLForConditionalGeneration", "parameters": model.num_parameters()}


BUILDERS = {"mineru": build_mineru, "hunyuan": build_hunyuan}

if __name__ == "__main__":
    kind, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    facts = BUILDERS[kind](out)
    import transformers

    facts.update(transformers=transformers.__version__, torch=torch.__version__)
    print(json.dumps(facts))
