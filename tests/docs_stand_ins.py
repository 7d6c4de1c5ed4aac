"""The user's own objects that the documentation's examples take as given.

Examples in README.md and docs/ leave a few names to the reader: their encoder, their class
names, their LLM client, their pipeline. ``tests/project/test_docs_examples.py`` runs each example
with exactly these names defined (``__all__``) and nothing else, so an example that forgets
an import or names anything else fails. Every stand-in is a real part: a torchvision ResNet
built from config, real handwritten digit scans, a real :class:`vlmscope.Dataset`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
import torchvision

import vlmscope

__all__ = ["encoder", "head", "held_out", "image_tensor", "labels", "llm_base_url",
           "load_resnet", "my_llm_client", "pipeline"]

labels = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
"""The user's class names (the digits of scikit-learn's scans)."""


def _digit_tensors(n: int) -> tuple[torch.Tensor, list[int]]:
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    scans = torch.tensor(digits.images[:n], dtype=torch.float32)[:, None] / 16.0
    pixels = F.interpolate(scans, size=64, mode="bilinear").expand(-1, 3, -1, -1)
    return pixels.contiguous(), [int(t) for t in digits.target[:n]]


def load_resnet() -> torch.nn.Module:
    """The user's trained encoder: a ResNet-18 with ten classes, built from config."""
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=len(labels))


encoder = load_resnet().eval()
"""The user's encoder."""

_pixels, _targets = _digit_tensors(32)
image_tensor = _pixels[:1]
"""One preprocessed image, as the user's own transform would give it."""


class _LLMClient:
    """A hosted-LLM client: answers with the encoder's top label, as a prompt would ask."""

    def ask(self, *args, **kwargs) -> str:
        return "tabby"


my_llm_client = _LLMClient()


def _as_tensor(image) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        return image if image.dim() == 4 else image[None]
    import numpy as np

    array = torch.tensor(np.asarray(image.convert("RGB").resize((64, 64))),
                         dtype=torch.float32) / 255.0
    return array.permute(2, 0, 1)[None]


def pipeline(row) -> str:
    """The user's pipeline: the encoder's top class, as the answer."""
    with torch.no_grad():
        logits = encoder(_as_tensor(row.image))
    return labels[int(logits.argmax())]


def head(model: torch.nn.Module, rows) -> list[str]:
    """The user's batched language head: one answer per row."""
    with torch.no_grad():
        logits = model(torch.cat([_as_tensor(row.image) for row in rows]))
    return [labels[int(i)] for i in logits.argmax(dim=1)]


held_out = vlmscope.Dataset.from_records(
    "held-out", [{"id": f"digit-{i}", "image": _pixels[i], "expected": labels[t]}
                 for i, t in enumerate(_targets)])
"""The user's held-out cohort: 32 real digit scans with their labels."""


def write_image_folder(folder) -> None:
    """``images/`` and ``labels.csv`` as ``Dataset.from_folder`` reads them, from the scans."""
    from pathlib import Path

    from PIL import Image

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = ["file,expected"]
    for i, target in enumerate(_targets[:8]):
        pixels = (_pixels[i].permute(1, 2, 0).numpy() * 255).astype("uint8")
        Image.fromarray(pixels).save(folder / "images" / f"{i}.png")
        lines.append(f"{i}.png,{labels[target]}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")


class _ChatCompletions(BaseHTTPRequestHandler):
    """The user's OpenAI-compatible server (vLLM, Ollama, ...): ``/v1/chat/completions``
    answering "It is a seven." with its token usage."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
            "model": body["model"],
            "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "It is a seven."}}],
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


_server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
threading.Thread(target=_server.serve_forever, daemon=True).start()
llm_base_url = f"http://127.0.0.1:{_server.server_port}/v1"
"""Where the user's OpenAI-compatible server listens."""
