"""Training and evaluation data: the BI/BD degradations, datasets and augmentations."""
