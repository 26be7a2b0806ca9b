#!/usr/bin/env python
"""Example 1 of the guide: basic profiling, runnable on a CPU.

The guide leaves `train_loader`, `model` and `optimizer` to the reader; here
they are a DataLoader over a small synthetic TensorDataset, a small
nn.Module whose forward returns the scalar loss of a batch, and SGD.
Everything from "Create profiler" on is the guide's code, plus
optimizer.zero_grad() before each backward pass.

    python examples/example1_basic.py
"""
import json

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from code_profiler import VideoOpusClipProfiler, create_profiler_config

# --- the pieces the guide assumes --------------------------------------------
torch.manual_seed(0)
features = torch.randn(256, 32)
labels = (features[:, :4].sum(dim=1) > 0).long()
train_loader = DataLoader(TensorDataset(features, labels), batch_size=32,
                          shuffle=True, generator=torch.Generator().manual_seed(0))


class LossModel(nn.Module):
    """A small classifier whose forward(batch) returns the batch's loss."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 2))
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, batch):
        x, y = batch
        return self.loss_fn(self.net(x), y)


model = LossModel()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

# --- the guide's Example 1 ---------------------------------------------------
# Create profiler
config = create_profiler_config("basic")
profiler = VideoOpusClipProfiler(config)

# Start profiling
profiler.start_profiling()


# Profile training loop
@profiler.profile_function
def training_epoch():
    for batch in train_loader:
        optimizer.zero_grad()
        loss = model(batch)
        loss.backward()
        optimizer.step()


# Run training
for epoch in range(5):
    training_epoch()

# Stop profiling and get report
profiler.stop_profiling()
report = profiler.get_comprehensive_report()
bottlenecks = profiler.identify_bottlenecks()

print("Profiling Results:")
print(json.dumps(report, indent=2))
