"""Connectors: one package per kind of source, each registered under ``agnes.connectors``."""
