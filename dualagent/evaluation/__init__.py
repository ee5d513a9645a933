"""Judging a recorded call: checks over bank state, tool calls and transcript; the outcome;
per-call metrics; the optional LLM judge; estimated costs of hosted calls."""
