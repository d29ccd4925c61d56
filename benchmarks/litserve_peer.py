"""The LitServe peer of `serve`: the same exported ONNX graph on the same runtime (ONNX Runtime,
this machine's optimized session), the same decoding, LitServe's own dynamic batching.

usage: litserve_peer.py WEIGHTS PORT BATCH WAIT_S   (multipart uploads, field "file", at /predict)
"""

from __future__ import annotations

import sys

import litserve as ls
import numpy as np

from resnet_cli.config import resolve
from resnet_cli.inputs.decode import decode_held
from resnet_cli.model.imagenet import decode_top_k
from resnet_cli.request import ModelRequest


class ResNetAPI(ls.LitAPI):
    def setup(self, device):
        from resnet_cli.runtimes.model_cache import ensure_onnx_model
        from resnet_cli.runtimes.onnx_runtime import open_session

        self.config = resolve(ModelRequest(weights=sys.argv[1], runtime="onnx"))
        self.session = open_session(ensure_onnx_model(self.config, True), "cpu", self.config.threads)
        self.input = self.session.get_inputs()[0].name

    def decode_request(self, request):
        return decode_held(request["file"].file.read(), self.config.decode)

    def batch(self, inputs):
        return np.stack(inputs)

    def predict(self, batch):
        return self.session.run(None, {self.input: batch})[0]

    def unbatch(self, output):
        return list(output)

    def encode_response(self, output):
        return {"predictions": [p.as_dict() for p in decode_top_k(output[None], 5, self.config.labels)[0]]}


if __name__ == "__main__":
    weights, port, batch, wait = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    api = ResNetAPI(max_batch_size=batch, batch_timeout=wait)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False, num_api_servers=1)
