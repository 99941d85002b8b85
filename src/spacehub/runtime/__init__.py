"""Runs Spaces: the pure plan(), the reconciler that carries it out, and the backends that run apps."""
