"""Runtimes: predict(uint8 batch) → scores or features. base (the one interface) · factory
(open the one a config names) · keras_runtime · onnx_runtime · onnx_export (graph + metadata) ·
quantize (int8) · model_cache (lock, atomic store, list, clear)."""
