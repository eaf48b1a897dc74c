"""Benchmarks: speed, memory, FLOPs and roofline (`vsrkit bench`)."""
