"""Streaming: text printed as it arrives, then the typed event stream and stream statistics.

Run: ``python -m openai_chatapi.examples.example_3_streaming``
"""

from __future__ import annotations

import asyncio

from openai_chatapi import ChatAgent, ContentDeltaEvent, FinishEvent, RuntimeConfig, UsageEvent
from openai_chatapi.examples._endpoint import endpoint


async def main() -> None:
    async with endpoint(temperature=0.2, max_tokens=80) as config:
        runtime = RuntimeConfig(enable_logging=False, stream_enable_progress=False)
        async with ChatAgent(config, runtime) as agent:
            print("assistant: ", end="", flush=True)
            pieces = [p async for p in agent.chat_stream("Tell me a two-line poem about rivers.")]
            print(f"[{len(pieces)} pieces streamed]")

            # The typed event stream underneath chat_stream:
            async for event in agent.chat_stream_events("Now one line about mountains."):
                if isinstance(event, ContentDeltaEvent):
                    print(event.text, end="", flush=True)
                elif isinstance(event, UsageEvent):
                    print(f"\n[usage: {event.usage.total_tokens} tokens]", end="")
                elif isinstance(event, FinishEvent):
                    print(f"\n[finish reason: {event.finish_reason}]")
            stats = agent.get_stats()
            print(
                f"[streams: {stats['streams']}, chunks: {stats['stream_chunks']}, "
                f"time to first token: {stats['average_time_to_first_token']}]"
            )


if __name__ == "__main__":
    asyncio.run(main())
