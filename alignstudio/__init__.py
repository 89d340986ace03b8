"""AlignStudio: the preference-alignment loop (sample, label, validate, train, compare) in one app."""

__version__ = "0.1.0"
