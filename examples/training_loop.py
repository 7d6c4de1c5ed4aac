"""A plain PyTorch loop on scikit-learn's digits, recorded with ``vlmscope.training``.

Each epoch lands as a span in the DuckDB store (losses, accuracies, learning rate, gradient
norms per stage, checkpoint SHA-256); at the end the overfitting, instability and
gradient-flow checks are recorded as EVALUATOR spans. Runs offline in a few seconds:

    python examples/training_loop.py --db training.duckdb
    vlmscope sql "SELECT name, attributes FROM spans" --db training.duckdb
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits
from torch import nn

import vlmscope
from vlmscope.training import TrainingRun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="training.duckdb", help="DuckDB store to write")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    vlmscope.configure(db=args.db)

    torch.manual_seed(0)
    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(digits.target)
    train_x, train_y, val_x, val_y = images[:1400], labels[:1400], images[1400:], labels[1400:]
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.2), nn.Linear(256, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()

    with TrainingRun("digits-cnn", model, optimizer) as run:
        for _ in range(args.epochs):
            model.train()
            for batch in torch.randperm(len(train_x)).split(64):
                optimizer.zero_grad()
                outputs = model(train_x[batch])
                loss = loss_fn(outputs, train_y[batch])
                loss.backward()
                run.step(loss, outputs=outputs, targets=train_y[batch])
                optimizer.step()
            model.eval()
            with torch.no_grad():
                val_outputs = model(val_x)
            epoch = run.end_epoch(
                val_loss=float(loss_fn(val_outputs, val_y)),
                val_accuracy=float((val_outputs.argmax(1) == val_y).float().mean()))
            print(f"epoch {epoch.epoch}: train loss {epoch.train_loss:.3f}, "
                  f"val loss {epoch.val_loss:.3f}, val accuracy {epoch.val_accuracy:.3f}")
    for report in run.reports:
        print(f"{report.name}: {report.label} - {report.explanation}")
    vlmscope.shutdown()


if __name__ == "__main__":
    main()
