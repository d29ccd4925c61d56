"""runtimes.quantize: int8 judged by pooled-feature cosine against fp32 on real photos."""

import numpy as np
import pytest
from conftest import onnx_session

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
    cosine = (
        (features["int8"] * features["fp32"]).sum(1)
        / np.linalg.norm(features["int8"], axis=1)
        / np.linalg.norm(features["fp32"], axis=1)
    )
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
    cosine = (features["int8"] * features["fp32"]).sum(1) / (
        np.linalg.norm(features["int8"], axis=1) * np.linalg.norm(features["fp32"], axis=1)
    )
    print(
        f"{name} int8 vs fp32 on {len(judged_photos)} photos: cosine min {cosine.min():.5f}, mean {cosine.mean():.5f}"
    )
    assert cosine.min() >= 0.995
    np.testing.assert_allclose(features["fp32"], member.pooled(judged_photos), rtol=1e-4, atol=1e-4)
