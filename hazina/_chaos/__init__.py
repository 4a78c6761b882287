"""Fault injection: the ``chaos`` kind."""
