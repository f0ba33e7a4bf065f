"""Basic text chat: a system prompt, two turns that share history, and the statistics.

Run: ``python -m openai_chatapi.examples.example_1_basic_chat``
(uses OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL, or the embedded local model).
"""

from __future__ import annotations

import asyncio

from openai_chatapi import ChatAgent, ChatAPIException, RuntimeConfig
from openai_chatapi.examples._endpoint import endpoint


async def main() -> None:
    async with endpoint(temperature=0.2, max_tokens=64) as config:
        runtime = RuntimeConfig(enable_logging=True, log_level="WARNING", max_retries=2)
        async with ChatAgent(config, runtime) as agent:
            agent.set_system_prompt("You are a concise assistant. Answer in one sentence.")
            try:
                print("assistant:", await agent.chat("What is the capital of France?"))
                print("assistant:", await agent.chat("And of Italy?"))
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
    asyncio.run(main())
