import numpy as np

from training.evaluation.reference_code import mahalanobis


def test_mahalanobis_measures_distance_in_the_codes_own_spread():
    rng = np.random.default_rng(0)
    # Wide along the first axis, narrow along the second.
    codes = rng.normal(size=(20000, 2)) * np.array([10.0, 0.1])
    along_wide, along_narrow = mahalanobis(np.array([[10.0, 0.0], [0.0, 0.1]]), codes)
    assert abs(along_wide - 1.0) < 0.05 and abs(along_narrow - 1.0) < 0.05
    # The same Euclidean step is a hundred times farther across the narrow axis.
    far = mahalanobis(np.array([[0.0, 1.0]]), codes)[0]
    assert abs(far - 10.0) < 0.5
    # The codes' own distances follow the chi distribution with 2 degrees of freedom.
    assert abs(np.median(mahalanobis(codes, codes)) - np.sqrt(2 * np.log(2))) < 0.05
