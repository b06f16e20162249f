"""Torch models: anomaly detectors (:class:`~fedsim.models.base.AnomalyModel`) and classifiers that return one logit per class."""
