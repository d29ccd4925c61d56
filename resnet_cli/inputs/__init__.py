"""Inputs: discover (files, folders, stdin, URIs → Sources) · fetch (http, URIs, local files →
bytes) · decode (bytes → RGB uint8 at the model's size, or a typed error)."""
