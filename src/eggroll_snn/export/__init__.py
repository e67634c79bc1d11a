"""Export trained networks to NIR, checked by re-simulation with an independent NIR interpreter."""

from eggroll_snn.export.nir import to_nir
from eggroll_snn.export.run import Export, agreement_report, export_run
from eggroll_snn.export.simulate import simulate_nir

__all__ = ["Export", "agreement_report", "export_run", "simulate_nir", "to_nir"]
