"""Training loops: the generic `Solver` and its task subclasses."""

from denoise_vc.solvers.base import Solver
from denoise_vc.solvers.denoise import DenoiseSolver
from denoise_vc.solvers.diffusion import DiffusionSolver

__all__ = ["Solver", "DenoiseSolver", "DiffusionSolver"]
