"""(a) Instrument a torchvision ResNet and a transformers captioner in about ten lines.

Both models are built from config (no download). Run: python examples/instrument_resnet_captioner.py
"""

import sys

import torch
import torchvision
import transformers

import vlmscope

db = sys.argv[1] if len(sys.argv) > 1 else "example.duckdb"
vlmscope.configure(db=db)                                             # embedded DuckDB store
encoder = torchvision.models.resnet18(weights=None).eval()           # your checkpoint here
captioner = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_embd=64,
                                                                 n_head=2)).eval()
vlmscope.instrument_encoder(encoder, top_k=5)                        # ImageNet names built in
vlmscope.instrument_generator(captioner)                             # every generate() call
images = torch.rand(4, 3, 96, 96)
with vlmscope.trace_batch([f"img-{i}" for i in range(4)], expected=["tabby"] * 4):
    logits = encoder(images)                                         # 4 encoder records
    captioner.generate(logits.argmax(1, keepdim=True) % 50257, max_new_tokens=5,
                       do_sample=False, pad_token_id=0)              # 4 outputs, one per row
vlmscope.shutdown()
print(f"traced 4 rows into {db}; try: vlmscope sql --db {db} \"SELECT * FROM pipeline_rows\"")
