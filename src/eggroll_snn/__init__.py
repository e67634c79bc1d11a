"""eggroll-snn: gradient-free training of spiking neural networks with EGGROLL.

EGGROLL is an evolution strategy whose per-member weight perturbations are low rank,
``E = A B^T / sqrt(r)``; the noise is regenerated from keys and never stored.
"""

__version__ = "0.1.0"
