"""The offline toolchain: render, checks, diff, compose, state-backend check. May import the platform."""
