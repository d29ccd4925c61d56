"""training.fit: the logistic head (standardisation folded into the kernel), the split, augmentation."""

import numpy as np


def test_fit_head_folds_standardisation_into_the_kernel():
    from sklearn.linear_model import LogisticRegression

    from resnet_cli.training import fit as train

    rng = np.random.default_rng(0)
    for classes in (2, 3):
        targets = np.repeat(np.arange(classes), 12)
        features = rng.normal(2.0, 3.0, (len(targets), 2048)).astype(np.float32)
        features[np.arange(len(targets)), targets] += 6
        fit = train.fit_head(features, targets, classes)
        assert fit.kernel.shape == (2048, classes) and fit.folds == 3 and fit.C in train.C_GRID
        exact = features.astype(np.float64)  # what fit_head fits on: the same optimum, to L-BFGS's tolerance
        mean, scale = exact.mean(0), exact.std(0)  # (no dimension here has a spread below the floor)
        reference = LogisticRegression(C=fit.C, class_weight="balanced", max_iter=2000).fit(
            (exact - mean) / scale, targets
        )
        np.testing.assert_allclose(
            train.scores(features, fit.kernel, fit.bias), reference.predict_proba((exact - mean) / scale), atol=1e-3
        )


def test_stratified_split_is_seeded_and_keeps_every_class_in_training():
    from resnet_cli.training.fit import stratified_split

    targets = np.array([0] * 10 + [1] * 5 + [2] * 2)
    fit, held = stratified_split(targets, 0.2, seed=3)
    assert sorted(np.concatenate([fit, held])) == list(range(len(targets)))
    assert [int(np.sum(targets[held] == c)) for c in range(3)] == [2, 1, 1]
    assert set(targets[fit]) == {0, 1, 2}
    np.testing.assert_array_equal(stratified_split(targets, 0.2, seed=3)[1], held)
    assert not np.array_equal(stratified_split(targets, 0.2, seed=4)[1], held)
    assert len(stratified_split(targets, 0.0, seed=3)[1]) == 0


def test_augmented_keeps_the_original_first_and_is_seeded(sample_arrays):
    from resnet_cli.training.fit import augmented

    out = augmented(sample_arrays[:2], 3, np.random.default_rng(0))
    assert out.shape == (2, 4, *sample_arrays.shape[1:]) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 0], sample_arrays[:2])
    assert not np.array_equal(out[0, 1], out[0, 0])
    np.testing.assert_array_equal(augmented(sample_arrays[:2], 3, np.random.default_rng(0)), out)
