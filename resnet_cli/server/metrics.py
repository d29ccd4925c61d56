"""The server's Prometheus metrics (prometheus-client, its own registry: nothing global)."""

from __future__ import annotations

from dataclasses import dataclass, field


def _registry():
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


@dataclass
class Metrics:
    registry: object = field(default_factory=_registry)

    def __post_init__(self):
        from prometheus_client import Counter, Gauge, Histogram

        prefix = "resnet_classify"
        self.requests = Counter(
            f"{prefix}_requests", "HTTP requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            f"{prefix}_request_seconds",
            "Time from a request's arrival to its answer",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            f"{prefix}_batch_size",
            "Images per model batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=self.registry,
        )
        self.queue_depth = Gauge(f"{prefix}_queue_depth", "Images waiting or being classified", registry=self.registry)
        self.images = Counter(f"{prefix}_images", "Images classified, by outcome", ["outcome"], registry=self.registry)
        self.errors = Counter(
            f"{prefix}_errors", "Refused or failed requests, by kind", ["kind"], registry=self.registry
        )

    def text(self) -> tuple[bytes, str]:
        """The exposition (body, content type)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
