"""cotgen: verify and reinforce autoregressive image generation step by step."""

__version__ = "0.1.0"
