"""The perception node: parameters, frames in, inference and publishing stages, outputs."""
