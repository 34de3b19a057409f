"""Generate a tiny random-weight Qwen2 model and a byte-level BPE tokenizer.

Test fixture for the simulated cluster: no model hub is reachable, so the engine
image builds its own model. About 250 KB, a few seconds on one core. vLLM on CPU
needs head_dim >= 32: hidden 256 with 8 heads gives 32. 8 attention heads divide by every
tensor parallel size the simulated cluster plans (4 nodes, and 8 in scripts/bench.sh scale),
as a real plan's must; its 2 KV heads are replicated at TP 4 and 8 (which vLLM does when the
TP size is a multiple of them).
"""
from __future__ import annotations

import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "DGX Spark nodes serve one large model across a RoCE fabric with vLLM and Ray.",
    "The quick brown fox jumps over the lazy dog. Hello, world! 0123456789",
    "Tensor parallel ranks exchange activations; pipeline stages pass hidden states.",
] * 50


def main(out: str) -> None:
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(target)

    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        torch_dtype="bfloat16",
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(target, safe_serialization=True)
    size = sum(p.stat().st_size for p in target.iterdir())
    print(f"tiny model written to {target} ({size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/models/sparkops-tiny-qwen")
