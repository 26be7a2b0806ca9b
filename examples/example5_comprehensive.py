#!/usr/bin/env python
"""Example 5 of the guide: comprehensive analysis, runnable on a CPU.

The guide leaves `train_loader`, `model` and `optimizer` to the reader; here
they are a DataLoader over a small synthetic TensorDataset, a small
nn.Module whose forward returns the scalar loss of a batch, and SGD.
Everything from "Comprehensive profiling" on is the guide's code, plus
optimizer.zero_grad() before each backward pass.  The report is saved as
training_profile.json (where the profiler's save_comprehensive_report puts
it: see its output).

    python examples/example5_comprehensive.py
"""
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

# --- the guide's Example 5 ---------------------------------------------------
# Comprehensive profiling
config = create_profiler_config("comprehensive")
profiler = VideoOpusClipProfiler(config)

# Start profiling
profiler.start_profiling()

# Profile entire training pipeline
with profiler.profiling_context("full_training"):
    for epoch in range(3):
        with profiler.profiling_context(f"epoch_{epoch}"):
            for batch_idx, batch in enumerate(train_loader):
                with profiler.profiling_context(f"batch_{batch_idx}"):
                    # Training step
                    optimizer.zero_grad()
                    loss = model(batch)
                    loss.backward()
                    optimizer.step()

# Stop profiling
profiler.stop_profiling()

# Get comprehensive report
report = profiler.get_comprehensive_report()
bottlenecks = profiler.identify_bottlenecks()

# Save report
profiler.save_comprehensive_report("training_profile.json")

# Print summary
print("=== Profiling Summary ===")
print(f"Total functions profiled: {report['performance']['total_functions_profiled']}")
print(f"Slow functions: {len(bottlenecks['slow_functions'])}")
print(f"Memory intensive functions: {len(bottlenecks['memory_intensive_functions'])}")
print(f"Slow data loading: {len(bottlenecks['slow_data_loading'])}")

# Print recommendations
print("\n=== Recommendations ===")
for recommendation in bottlenecks['recommendations']:
    print(f"- {recommendation}")
