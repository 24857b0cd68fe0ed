"""A tensor function of fixed shapes replayed as one CUDA graph.

The task's per-step torch work on rough ground (the terrain's boxes laid out around every fly, the ground
under it) is a few hundred small kernels. Issued one by one from Python, the GPU waits for the host between
them (docs/physics.md, "The whole loop"); captured once and replayed, they cost one launch. Off the GPU the
function is simply called.
"""
from __future__ import annotations

from typing import Callable

import torch


class GraphedCall:
    """Call `fn(*tensors)` as a CUDA graph: the first call on a CUDA device (and any call whose argument
    shapes, dtypes or device differ from the captured ones) warms `fn` up and captures it; later calls copy
    their arguments into the graph's input buffers and replay it.

    `fn` must be a pure function of its tensor arguments and of tensors whose storage stays put (e.g. a
    model's fields that it writes in place), with no host synchronisation and no host-to-device copy. It
    returns a tensor, a tuple of tensors or None; a replay returns the graph's own output buffers, which the
    next call overwrites: use them (or copy them) before calling again."""

    enabled = True  # False: every call runs `fn` eagerly (benchmarks/step_profile.py --eager-task compares)

    def __init__(self, fn: Callable, warmup: int = 2):
        self.fn, self.warmup = fn, warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self.key = None
        self.inputs: tuple[torch.Tensor, ...] = ()
        self.output = None

    def __call__(self, *args: torch.Tensor):
        if not (self.enabled and args and args[0].is_cuda):
            return self.fn(*args)
        key = tuple((a.shape, a.dtype, a.device) for a in args)
        with torch.cuda.device(args[0].device):  # a rank's GPU need not be the current one
            if key != self.key:
                self._capture(args, key)
            for buffer, value in zip(self.inputs, args):
                buffer.copy_(value)
            self.graph.replay()
        return self.output

    def _capture(self, args: tuple[torch.Tensor, ...], key) -> None:
        self.inputs = tuple(a.clone() for a in args)
        side = torch.cuda.Stream(device=args[0].device)
        side.wait_stream(torch.cuda.current_stream(args[0].device))
        with torch.cuda.stream(side):  # warm-up off the capture (lazy initialisations, allocator)
            for _ in range(self.warmup):
                self.fn(*self.inputs)
        torch.cuda.current_stream(args[0].device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.output = self.fn(*self.inputs)
        self.graph, self.key = graph, key
