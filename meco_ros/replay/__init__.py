"""Replay evaluation: a recorded drive through the perception node, scored like `meco eval`."""
