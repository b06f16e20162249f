"""fedsim: a discrete-event federated-learning simulator.

Time is virtual (SimPy), compute is real (torch). See README.md for a tour.
"""

__version__ = "0.1.0"
