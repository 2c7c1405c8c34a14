"""Adapters: the only code that talks to an outside system (apiserver, database, Jenkins, files, HTTP)."""
