"""(c) A dataset and a regression gate as a CI step.

Two checkpoints of a small torchvision ResNet, trained here on scikit-learn's digit scans,
answer the same held-out dataset; `vlmscope diff` is the gate (exit 1 on a significant
regression). Run: python examples/regression_gate.py [DB]
"""

import subprocess
import sys

import numpy as np
import torch
import torchvision
from sklearn.datasets import load_digits

import vlmscope
from vlmscope.evaluators import GroundTruthMatch

db = sys.argv[1] if len(sys.argv) > 1 else "gate.duckdb"
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32)[:, None].repeat(1, 3, 1, 1) / 16
names = [str(d) for d in range(10)]


def train(steps: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(steps):
        batch = slice((step * 64) % 1200, (step * 64) % 1200 + 64)
        loss = torch.nn.functional.cross_entropy(model(images[batch]),
                                                 torch.tensor(digits.target[batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def pipeline(model: torch.nn.Module):
    def answer(rows):
        pixels = torch.stack([torch.tensor(np.asarray(r.image), dtype=torch.float32)
                              .permute(2, 0, 1) / 255 for r in rows])
        with torch.no_grad():
            return [names[i] for i in model(pixels).argmax(1).tolist()]
    return answer


held_out = vlmscope.Dataset.from_records("held-out", [
    {"id": f"digit-{i}", "image": (images[i].permute(1, 2, 0) * 255).byte().numpy(),
     "expected": names[digits.target[i]]} for i in range(1500, 1700)])
held_out.add_evaluation(GroundTruthMatch())
vlmscope.configure(db=db)
for name, steps in (("production", 60), ("candidate", 3)):       # the candidate is undertrained
    model = train(steps)
    handle = vlmscope.instrument_encoder(model, labels=names)
    held_out.run(pipeline(model), name=name, batch_size=50, progress=False)
    handle.uninstrument()
vlmscope.shutdown()
gate = subprocess.run([sys.executable, "-m", "vlmscope", "diff", "--db", db, "--base", "production",
                       "--candidate", "candidate", "--max-drop", "0.01"])
print("the gate says:", "regression, do not ship" if gate.returncode == 1 else "ship it")
sys.exit(gate.returncode)
