"""Process-wide settings for a process that runs a policy on the CPU: torch's intra-op thread count and glibc
malloc's reuse of freed memory. Whoever starts the process applies them (the policy node, a benchmark), never a
policy object, since they change everything else the process runs too."""

from __future__ import annotations

import ctypes
import os

import torch


def inference_threads() -> int:
    """One fewer than the CPUs this process may use (at least one): the camera driver, executor and simulation
    share the machine, and on a 2-core machine two intra-op threads stalled on each other's OpenMP barriers
    whenever another process ran (ticks 3-10x slower)."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


def configure_cpu_inference(num_threads: int | None = None) -> int:
    """Sets torch's thread count (None: `inference_threads()`) and keeps freed memory; returns the thread count."""
    threads = num_threads or inference_threads()
    torch.set_num_threads(threads)
    keep_freed_memory()
    return threads


def keep_freed_memory() -> None:
    """Makes glibc's malloc reuse freed feature maps instead of handing them back to the OS.

    By default each large tensor is a fresh mmap whose pages fault in on first touch, every tick
    again; keeping allocations up to 32 MB on the heap and not trimming it cut a CPU tick of the rt1
    preset by about a third (benchmarks/rt1_inference.py). A no-op where libc is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 1 << 30)
    mallopt(m_top_pad, 64 << 20)
