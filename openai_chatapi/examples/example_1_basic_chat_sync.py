"""Basic text chat without ``async``: ``SyncChatAgent``, as in a script or a notebook cell.

The same conversation as example 1 (a system prompt, two turns that share history, the
statistics), plus a streamed answer.

Run: ``python -m openai_chatapi.examples.example_1_basic_chat_sync``
(uses OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL, or the embedded local model).
"""

from __future__ import annotations

from openai_chatapi import ChatAPIException, RuntimeConfig, SyncChatAgent
from openai_chatapi.examples._endpoint import endpoint_sync


def main() -> None:
    with endpoint_sync(temperature=0.2, max_tokens=64) as cfg:
        runtime = RuntimeConfig(enable_logging=True, log_level="WARNING", max_retries=2)
        with SyncChatAgent(cfg, runtime) as agent:
            agent.set_system_prompt("You are a concise assistant. Answer in one sentence.")
            try:
                print("assistant:", agent.chat("What is the capital of France?"))
                print("assistant:", agent.chat("And of Italy?"))
                print("assistant (streamed): ", end="", flush=True)
                for piece in agent.chat_stream("And of Spain?", display_stream=False):
                    print(piece, end="", flush=True)
                print()
            except ChatAPIException as exc:
                print(f"request failed: {exc} {exc.details}")
                raise
            stats = agent.get_stats()
            print(
                f"[{stats['requests']} requests, {stats['total_tokens']} tokens, "
                f"average latency {stats['average_latency']:.2f}s]"
            )
            print(f"[history holds {len(agent.history)} messages]")


if __name__ == "__main__":
    main()
