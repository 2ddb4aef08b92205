"""Extraction domain: the Bitbucket resource, the raw snapshot asset and its checks."""
