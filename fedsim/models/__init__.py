"""Torch models; each is an :class:`~fedsim.models.base.AnomalyModel`."""
