"""Runnable examples: ``python -m openai_chatapi.examples.example_1_basic_chat``.

Each uses the endpoint from ``OPENAI_BASE_URL``/``OPENAI_API_KEY``/``OPENAI_MODEL`` when set,
and otherwise starts the embedded local model (the ``local`` extra).
"""
