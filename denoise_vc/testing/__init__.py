"""Helpers shared by the tests and the robustness benchmark (generated bad inputs, tiny checkpoints)."""
