"""runtimes.quantize: int8 judged by pooled-feature cosine against fp32 on real photos."""

import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import cosines, cpu_flags_as, onnx_session

pytestmark = pytest.mark.keras


def test_int8_agrees_with_fp32(classic_file, dev_arrays, keras_probabilities):
    """int8 judged by the cosine between its pooled features and fp32's on real photos. Random
    weights leave logit margins so small that any rounding flips top-1 (and int8 kernels round
    differently with and without VNNI), so top-1 agreement is only reported beside it; int8's
    top-1 must still be among fp32's top five."""
    features = {
        precision: onnx_session(classic_file, include_top=False, pooling="avg", precision=precision).run(
            None, {"images": dev_arrays}
        )[0]
        for precision in ("int8", "fp32")
    }
    cosine = cosines(features["int8"], features["fp32"])
    top1 = onnx_session(classic_file, precision="int8").run(None, {"images": dev_arrays})[0].argmax(1)
    agreement = (top1 == keras_probabilities.argmax(1)).mean()
    in_top5 = np.mean([label in five for label, five in zip(top1, np.argsort(-keras_probabilities, 1)[:, :5])])
    print(
        f"int8 vs fp32 on {len(dev_arrays)} photos: pooled-feature cosine min {cosine.min():.5f}, mean "
        f"{cosine.mean():.5f}; "
        f"top-1 agreement {agreement:.2f}, int8 top-1 in fp32's top-5 {in_top5:.2f}"
    )
    assert cosine.min() > 0.995  # measured 0.99982 (AVX-512 VNNI)
    assert in_top5 >= 0.95  # measured 1.00 (top-1 agreement 0.87 there, 0.85 on AVX2)


@pytest.mark.parametrize("name", ["resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2"])
def test_each_members_int8_keeps_its_pooled_features(family, judged_photos, name):
    """int8 of every member by the pooled-feature cosine against its own fp32 graph (whose
    features are keras.applications' own)."""
    member = family(name)
    features = {
        precision: member.session(include_top=False, pooling="avg", precision=precision).run(
            None, {"images": judged_photos}
        )[0]
        for precision in ("int8", "fp32")
    }
    cosine = cosines(features["int8"], features["fp32"])
    print(
        f"{name} int8 vs fp32 on {len(judged_photos)} photos: cosine min {cosine.min():.5f}, mean {cosine.mean():.5f}"
    )
    assert cosine.min() >= 0.995
    np.testing.assert_allclose(features["fp32"], member.pooled(judged_photos), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "flags, bits",
    [
        ({"avx2", "fma"}, 7),  # Zen 3, Haswell…: vpmaddubsw saturates 16 bits
        ({"avx2", "avx512f", "avx512bw"}, 7),  # Skylake-X: the same, 512 bits wide
        ({"avx2", "avx_vnni"}, 8),
        ({"avx512f", "avx512_vnni"}, 8),
        ({"avx512f", "amx_int8", "amx_tile"}, 8),
    ],
)
def test_the_weight_width_follows_the_cpu_flags(flags, bits):
    from resnet_cli.config import int8_weight_bits

    assert int8_weight_bits(frozenset(flags)) == bits


EMULATOR = shutil.which("qemu-x86_64")

# Run inside the emulated CPU: what numpy sees of it, then ONNX Runtime on the graph.
EMULATED_RUN = """
import sys, numpy as np, onnxruntime as ort
from numpy._core._multiarray_umath import __cpu_features__ as cpu
print(cpu["AVX2"], cpu["AVX512F"], cpu["AVX512VNNI"])
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
np.save(sys.argv[3], session.run(None, {"images": np.load(sys.argv[2])})[0])
"""


@pytest.mark.slow
@pytest.mark.skipif(
    EMULATOR is None or platform.machine() != "x86_64",
    reason="qemu-user is not installed (make install-test installs it where apt-get can)",
)
def test_the_int8_an_avx2_machine_builds_is_exact_on_an_avx2_cpu(family, judged_photos, tmp_path):
    """ResNet50V2 (the member AVX2's saturation hurt most: cosine min 0.980 with 8-bit weights)
    as a machine without VNNI builds it, run by ONNX Runtime's own kernels on an emulated
    Haswell (AVX2 and FMA, no AVX-512 or VNNI): the very numbers it gives on this CPU, and
    pooled features within cosine 0.995 of fp32."""
    member = family("resnet50v2")
    with cpu_flags_as("avx avx2 fma"):
        config = member.config(include_top=False, pooling="avg", precision="int8")
    assert config.weight_bits == 7
    from resnet_cli.runtimes.model_cache import ensure_onnx_model
    from resnet_cli.runtimes.onnx_runtime import open_session

    graph = ensure_onnx_model(config, quiet=True)
    np.save(tmp_path / "photos.npy", judged_photos)
    run = subprocess.run(
        [
            EMULATOR,
            "-cpu",
            "Haswell",
            sys.executable,
            "-c",
            EMULATED_RUN,
            graph,
            tmp_path / "photos.npy",
            tmp_path / "out.npy",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["True", "False", "False"]  # AVX2, no AVX-512, no VNNI
    emulated = np.load(tmp_path / "out.npy")
    here = open_session(graph).run(None, {"images": judged_photos})[0]
    np.testing.assert_array_equal(emulated, here)  # exact integer arithmetic on both
    fp32 = member.session(include_top=False, pooling="avg").run(None, {"images": judged_photos})[0]
    cosine = cosines(emulated, fp32)
    print(f"resnet50v2 7-bit int8 on an emulated Haswell: cosine to fp32 min {cosine.min():.5f}")
    assert cosine.min() >= 0.995
