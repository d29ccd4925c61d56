"""Training and judging on labeled photos: labels (CSV, class folders, wnid names) · fit
(split, augmentation, the logistic-regression head) · metrics (accuracy, confusion)."""
