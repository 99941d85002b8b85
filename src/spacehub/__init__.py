"""SpaceHub: a self-hosted home for Hugging Face-style Spaces."""

__version__ = "0.1.0"
