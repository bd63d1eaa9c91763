"""scikit-learn families: ``random_forest`` and ``extra_trees`` (:mod:`.forest`) and
``stacking`` (:mod:`.stacking`), sharing the skops native file (:mod:`.base`)."""

from quantrain.models.sklearn import forest, stacking  # noqa: F401  (registration)
