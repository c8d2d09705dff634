"""Model builders and loaders: tiny configs of the real architectures and the embedded assets."""
