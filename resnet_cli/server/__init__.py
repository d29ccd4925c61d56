"""``resnet-classify serve``: one engine held open behind HTTP. batcher (concurrent requests →
the engine's batches) · limits (what a request may be) · metrics (Prometheus) · app (the
Starlette routes)."""
