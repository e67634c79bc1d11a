"""Export trained networks to neuromorphic formats (NIR), with an independent re-simulation."""

from eggroll_snn.export.nir import SubtractionResetWarning, export_run, simulate_nir, to_nir

__all__ = ["SubtractionResetWarning", "export_run", "simulate_nir", "to_nir"]
