"""ootgen: declarative generator of Ocarina of Time romhacking training data.

Importing the package stays light (no anthropic, no jsonschema) so that `ootgen --help` is fast.
"""

__version__ = "0.1.0"
