"""Training loops: the generic `Solver` and its task subclasses."""

from solvers.base import Solver
from solvers.denoise import DenoiseSolver
from solvers.diffusion import DiffusionSolver

__all__ = ["Solver", "DenoiseSolver", "DiffusionSolver"]
