"""Converters from other monitoring tools' configurations to tocsin's (`tocsin import …`)."""
