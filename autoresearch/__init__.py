"""autoresearch: declarative, config-driven autonomous language-model research on one machine."""

__version__ = "0.1.0"
