"""Export of vsrkit models to other runtimes (ONNX)."""
