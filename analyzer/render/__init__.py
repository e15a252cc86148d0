"""Renderers: turn results and diagnoses into Rich renderables, JSON and Markdown."""
