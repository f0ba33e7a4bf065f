"""Basic text chat without ``async``: ``SyncChatAgent``, as in a script or a notebook cell.

A conversation like example 1's (a system prompt, turns that share history), plus a streamed
answer and a look at what the history holds.

Run: ``python -m openai_chatapi.examples.example_1_basic_chat_sync``
(uses OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL, or the embedded local model).
"""

from __future__ import annotations

from openai_chatapi import RuntimeConfig, SyncChatAgent
from openai_chatapi.examples._endpoint import endpoint_sync


def main() -> None:
    with (
        endpoint_sync(temperature=0.2, max_tokens=64) as cfg,
        SyncChatAgent(cfg, RuntimeConfig(max_retries=2)) as agent,
    ):
        agent.set_system_prompt("You are a concise assistant. Answer in one sentence.")
        print("assistant:", agent.chat("What is the capital of France?"))
        # No event loop to run: the stream is a plain iterator.
        print("assistant (streamed): ", end="", flush=True)
        for piece in agent.chat_stream("And of Spain?", display_stream=False):
            print(piece, end="", flush=True)
        print()
        for message in agent.history:
            print(f"[{message.role}] {str(message.content)[:60]!r}")
        print(f"[{agent.get_stats()['total_tokens']} tokens in all]")


if __name__ == "__main__":
    main()
