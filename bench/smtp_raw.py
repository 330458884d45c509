"""Raw SMTP send rate: the service's own SMTP sender, no outbox, `--concurrency` at a time.

    .venv/bin/python -m bench.smtp_raw --port 2525 --messages 2000 --concurrency 20

Prints JSON: messages, seconds (first send started to last one accepted), messages/s. The
outbox scenario runs it pinned like the servers, as the reference for `authsvc worker`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from app.config import Settings
from app.mail import SmtpEmailSender
from bench.outbox_mail import bench_mail


async def send_all(port: int, messages: int, concurrency: int) -> float:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
    )
    sender = SmtpEmailSender(settings)
    queue = list(range(messages))

    async def lane() -> None:
        while queue:
            await sender.send(bench_mail(queue.pop()))

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.smtp_raw")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    seconds = asyncio.run(send_all(args.port, args.messages, args.concurrency))
    print(
        json.dumps({"messages": args.messages, "seconds": seconds, "rate": args.messages / seconds})
    )


if __name__ == "__main__":
    main()
